package network

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/labctl/lab/internal/spawn"
)

// FoundBridge is a lab bridge, or what is left of one (dnsmasq, files),
// found on the host without any lab's state.
type FoundBridge struct {
	Bridge string
	Lab    string
	Owner  string // the state folder its owner file names ("" if none)
}

var bridgeRe = regexp.MustCompile(`^lab-([a-z][a-z0-9-]*)-([0-9]+)$`)

// ParseBridge reads a lab bridge's name (lab-LAB-N): its lab and index.
func ParseBridge(name string) (lab string, index int, ok bool) {
	m := bridgeRe.FindStringSubmatch(name)
	if m == nil {
		return "", 0, false
	}
	index, err := strconv.Atoi(m[2])
	return m[1], index, err == nil
}

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
		lab, _, _ := ParseBridge(br)
		fb := FoundBridge{Bridge: br, Lab: lab}
		if b, err := os.ReadFile(filepath.Join(RunDir, br+".owner")); err == nil {
			fb.Owner = strings.TrimSpace(string(b))
		}
		out = append(out, fb)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Bridge < out[j].Bridge })
	return out
}

// FindTables lists the labs that have an nftables table: inet lab_NAME
// (the drop rules), inet lab_NAME.policy and bridge lab_NAME (the policy).
func FindTables(ctx context.Context) []string {
	out, err := run(ctx, "nft", "list", "tables")
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var labs []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "table" || (f[1] != "inet" && f[1] != "bridge" && f[1] != "netdev") {
			continue
		}
		t, ok := strings.CutPrefix(f[2], "lab_")
		if !ok || t == "" {
			continue
		}
		t, _, _ = strings.Cut(t, ".") // lab_NAME.policy, lab_NAME.delay
		lab := strings.ReplaceAll(t, "_", "-")
		if !seen[lab] {
			seen[lab] = true
			labs = append(labs, lab)
		}
	}
	return labs
}

// RemoveTable deletes a lab's nftables tables, those that are there, its
// networks' rules included, and ends its delay lines.
func RemoveTable(ctx context.Context, lab string) error {
	return removeTables(ctx, lab, append(labTables(lab), "inet "+Table(lab))...)
}

// FindDelays lists the delay lines of every lab: lab → PIDs.
func FindDelays() map[string][]int { return taggedProcs("lab-delay:") }

// FindForwards lists the socat port forwards of every lab: lab → PIDs.
func FindForwards() map[string][]int { return taggedProcs("lab-forward:") }

// taggedProcs finds the live processes lab started whose argv[0] is
// PREFIX + LAB (+ ":…"), by lab.
func taggedProcs(prefix string) map[string][]int {
	out := map[string][]int{}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		tag, _, _ := strings.Cut(string(b), "\x00")
		rest, ok := strings.CutPrefix(tag, prefix)
		lab, _, _ := strings.Cut(rest, ":")
		if !ok || lab == "" {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if spawn.Alive(pid) {
			out[lab] = append(out[lab], pid)
		}
	}
	return out
}

// StopForwardPID ends a lab's socat by PID, if it still is one of that lab's.
func StopForwardPID(lab string, pid int) {
	if slices.Contains(ForwardPIDs(lab), pid) {
		stopPID(pid)
	}
}
