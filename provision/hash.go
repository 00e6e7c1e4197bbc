package provision

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/labctl/lab/topology"
)

// Label names a step for people: "step 2 (scripts/pg.sh)".
func Label(i int, s topology.Step) string {
	switch {
	case s.Shell != "":
		return fmt.Sprintf("step %d (%s)", i+1, s.Shell)
	case s.File != nil:
		return fmt.Sprintf("step %d (file %s → %s)", i+1, s.File.Src, s.File.Dst)
	case s.Ansible != "":
		return fmt.Sprintf("step %d (ansible %s)", i+1, s.Ansible)
	default:
		line := strings.TrimSpace(strings.SplitN(strings.TrimSpace(s.Inline), "\n", 2)[0])
		if len(line) > 40 {
			line = line[:40] + "…"
		}
		return fmt.Sprintf("step %d (inline: %s)", i+1, line)
	}
}

var factRef = regexp.MustCompile(`LAB_[A-Z0-9_]+`)

// StepHash is the hash of everything a step's result depends on: the
// script or files, its env, and the facts it uses (the LAB_* names its text
// mentions, or every fact when it reads /etc/lab/facts.*). A scale-out that
// changes LAB_ROLE_NGINX_IPS re-runs only the steps that use it.
func StepHash(top *topology.Topology, s topology.Step, facts map[string]string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "lab-step-v1\n")
	var text []byte
	switch {
	case s.Shell != "":
		b, err := os.ReadFile(top.Path(s.Shell))
		if err != nil {
			return "", err
		}
		text = b
		fmt.Fprintf(h, "shell %s\n", s.Shell)
	case s.Inline != "":
		text = []byte(s.Inline)
		fmt.Fprintf(h, "inline\n")
	case s.Ansible != "":
		b, err := ansibleText(top.Path(s.Ansible))
		if err != nil {
			return "", err
		}
		text = b
		fmt.Fprintf(h, "ansible %s\n", s.Ansible)
	case s.File != nil:
		fmt.Fprintf(h, "file %s %s %s\n", s.File.Dst, s.File.Owner, s.File.Mode)
		if err := hashTree(h, top.Path(s.File.Src), top.Path(topology.StateDirName)); err != nil {
			return "", err
		}
	}
	h.Write(text)
	keys := make([]string, 0, len(s.Env))
	for k := range s.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "env %s=%s\n", k, s.Env[k])
	}
	used := map[string]bool{}
	all := bytes.Contains(text, []byte("/etc/lab/facts"))
	for _, m := range factRef.FindAll(text, -1) {
		used[string(m)] = true
	}
	if s.Ansible != "" { // playbooks see facts as host variables: lab_role_pg_ips
		for _, m := range hostVarRef.FindAll(text, -1) {
			used[strings.ToUpper(string(m))] = true
		}
	}
	for _, v := range s.Env {
		for _, m := range factRef.FindAllString(v, -1) {
			used[m] = true
		}
	}
	fk := make([]string, 0, len(facts))
	for k := range facts {
		if all || used[k] {
			fk = append(fk, k)
		}
	}
	sort.Strings(fk)
	for _, k := range fk {
		fmt.Fprintf(h, "fact %s=%s\n", k, facts[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// AnsibleDirs are the folders beside a playbook that Ansible reads with it:
// a change in any of them changes the step.
var AnsibleDirs = []string{"group_vars", "host_vars", "roles", "templates", "files", "vars", "tasks", "handlers"}

var hostVarRef = regexp.MustCompile(`\blab_[a-z0-9_]+`)

// ansibleText is a playbook and every file of the folders beside it that
// Ansible reads, each under its name, in a stable order.
func ansibleText(playbook string) ([]byte, error) {
	text, err := os.ReadFile(playbook)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Write(text)
	for _, d := range AnsibleDirs {
		root := filepath.Join(filepath.Dir(playbook), d)
		if _, err := os.Stat(root); err != nil {
			continue
		}
		err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err != nil || !e.Type().IsRegular() {
				return err
			}
			c, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, "\n--- %s\n", p[len(filepath.Dir(playbook))+1:])
			b.Write(c)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

// hashTree hashes a file or folder, without the lab's state folder skip.
func hashTree(h io.Writer, root, skip string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p == skip {
			return filepath.SkipDir
		}
		rel, _ := filepath.Rel(root, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %o\n", rel, info.Mode())
		if info.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(h, f)
			return err
		}
		return nil
	})
}
