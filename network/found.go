package network

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// FoundBridge is a lab bridge, or what is left of one (dnsmasq, files),
// found on the host without any lab's state.
type FoundBridge struct {
	Bridge string
	Lab    string
	Owner  string // the state folder its owner file names ("" if none)
}

var bridgeRe = regexp.MustCompile(`^lab-([a-z][a-z0-9-]*)-([0-9]+)$`)

// FindBridges lists lab bridges that exist, and bridges whose files in
// RunDir are left, with the lab each belongs to.
func FindBridges() []FoundBridge {
	names := map[string]bool{}
	if links, err := os.ReadDir("/sys/class/net"); err == nil {
		for _, l := range links {
			if bridgeRe.MatchString(l.Name()) {
				names[l.Name()] = true
			}
		}
	}
	if files, err := os.ReadDir(RunDir); err == nil {
		for _, f := range files {
			base := f.Name()
			for _, ext := range []string{".owner", ".conf", ".hosts", ".pid", ".hosts.tmp"} {
				base = strings.TrimSuffix(base, ext)
			}
			if bridgeRe.MatchString(base) {
				names[base] = true
			}
		}
	}
	var out []FoundBridge
	for br := range names {
		m := bridgeRe.FindStringSubmatch(br)
		fb := FoundBridge{Bridge: br, Lab: m[1]}
		if b, err := os.ReadFile(filepath.Join(RunDir, br+".owner")); err == nil {
			fb.Owner = strings.TrimSpace(string(b))
		}
		out = append(out, fb)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Bridge < out[j].Bridge })
	return out
}

// FindTables lists the labs that have an nftables table (lab_NAME).
func FindTables(ctx context.Context) []string {
	out, err := run(ctx, "nft", "list", "tables", "inet")
	if err != nil {
		return nil
	}
	var labs []string
	for _, line := range strings.Split(out, "\n") {
		if t, ok := strings.CutPrefix(strings.TrimSpace(line), "table inet lab_"); ok && t != "" {
			labs = append(labs, strings.ReplaceAll(t, "_", "-"))
		}
	}
	return labs
}

// RemoveTable deletes a lab's nftables table, if it is there.
func RemoveTable(ctx context.Context, lab string) error {
	if _, err := run(ctx, "nft", "list", "table", "inet", Table(lab)); err != nil {
		return nil
	}
	_, err := run(ctx, "nft", "delete", "table", "inet", Table(lab))
	return err
}

// FindForwards lists the socat port forwards of every lab: lab → PIDs.
func FindForwards() map[string][]int {
	out := map[string][]int{}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		tag, _, _ := strings.Cut(string(b), "\x00")
		lab, ok := strings.CutPrefix(tag, "lab-forward:")
		if !ok {
			continue
		}
		for _, pid := range ForwardPIDs(lab) {
			if !contains(out[lab], pid) {
				out[lab] = append(out[lab], pid)
			}
		}
	}
	return out
}

// StopForwardPID ends a lab's socat by PID, if it still is one of that lab's.
func StopForwardPID(lab string, pid int) {
	if contains(ForwardPIDs(lab), pid) {
		stopPID(pid)
	}
}

func contains(l []int, v int) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}
