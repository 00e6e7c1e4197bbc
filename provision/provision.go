package provision

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/labctl/lab/internal/shell"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labctl/lab/engine"
	"github.com/labctl/lab/providers"
	"github.com/labctl/lab/state"
	"github.com/labctl/lab/topology"
)

// Runner runs provisioning steps and health checks in nodes.
type Runner struct {
	// HealthPoll is how often failing health checks are tried again.
	HealthPoll time.Duration
}

// New returns a Runner.
func New() *Runner { return &Runner{HealthPoll: 500 * time.Millisecond} }

// StepDir is where scripts are copied in nodes.
const StepDir = "/var/lib/lab/steps"

// Files are the files every node gets: its facts.
func (r *Runner) Files(lab *topology.Lab, n topology.Node) map[string]string {
	return map[string]string{
		"/etc/lab/facts.json": FactsJSON(lab, n),
		"/etc/lab/facts.env":  FactsEnvFile(lab, n),
	}
}

// HostFiles are the files lab keeps for the lab on the host, in .lab:
// inventories for Ansible and an OpenSSH config.
func (r *Runner) HostFiles(lab *topology.Lab, key string) map[string]string {
	return map[string]string{
		"inventory.ini": InventoryINI(lab, key),
		"inventory.yml": InventoryYAML(lab, key),
		"ssh-config":    SSHConfig(lab, key),
	}
}

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
		b, err := os.ReadFile(top.Path(s.Ansible))
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

// StepError is a failed step, with what a user needs to fix it.
type StepError struct {
	Node  string
	Step  string
	Code  int
	Tail  []string
	Cause error
}

func (e *StepError) Error() string {
	var b strings.Builder
	if e.Cause != nil {
		fmt.Fprintf(&b, "node %s: provision %s: %v", e.Node, e.Step, e.Cause)
	} else {
		fmt.Fprintf(&b, "node %s: provision %s: exit %d", e.Node, e.Step, e.Code)
	}
	if len(e.Tail) > 0 {
		b.WriteString("\n  last output:\n    " + strings.Join(e.Tail, "\n    "))
	}
	return b.String()
}

func (e *StepError) Unwrap() error { return e.Cause }

// lineSink writes output to the log, keeps the last lines, and reports each
// complete line as progress.
type lineSink struct {
	mu       sync.Mutex
	log      io.Writer
	progress func(string)
	partial  bytes.Buffer
	tail     []string
}

func (l *lineSink) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.log != nil {
		_, _ = l.log.Write(b)
	}
	l.partial.Write(b)
	for {
		line, err := l.partial.ReadString('\n')
		if err != nil {
			l.partial.Reset()
			l.partial.WriteString(line)
			break
		}
		l.line(strings.TrimRight(line, "\r\n"))
	}
	return len(b), nil
}

func (l *lineSink) line(s string) {
	l.tail = append(l.tail, s)
	if len(l.tail) > 15 {
		l.tail = l.tail[len(l.tail)-15:]
	}
	if l.progress != nil {
		l.progress(s)
	}
}

func (l *lineSink) flush() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.partial.Len() > 0 {
		l.line(l.partial.String())
		l.partial.Reset()
	}
	return append([]string(nil), l.tail...)
}

// Provision runs the steps that need running and returns the new record.
func (r *Runner) Provision(ctx context.Context, req engine.ProvisionRequest) (*state.Provisioning, error) {
	n := req.Node
	top := req.Lab.Topology
	facts := Facts(req.Lab, n)
	steps := n.Spec.Provision
	rec := &state.Provisioning{Steps: make([]state.StepRecord, len(steps))}
	logw := req.Log
	if logw == nil {
		logw = io.Discard
	}
	progress := req.Progress
	if progress == nil {
		progress = func(string) {}
	}
	for i, s := range steps {
		label := Label(i, s)
		hash, err := StepHash(top, s, facts)
		if err != nil {
			return rec, &StepError{Node: n.Name, Step: label, Cause: err}
		}
		var prev *state.StepRecord
		if req.Previous != nil && i < len(req.Previous.Steps) {
			prev = &req.Previous.Steps[i]
		}
		if !req.Force && s.Run != topology.RunAlways && prev != nil && prev.OK && prev.Hash == hash {
			rec.Steps[i] = *prev
			continue
		}
		progress(label)
		fmt.Fprintf(logw, "==> %s %s (run: %s)\n", time.Now().UTC().Format(time.RFC3339), label, s.Run)
		sink := &lineSink{log: logw, progress: func(line string) { progress("│ " + line) }}
		code, err := r.runStep(ctx, req, i, s, facts, sink)
		tail := sink.flush()
		if err == nil && code != 0 {
			err = &StepError{Node: n.Name, Step: label, Code: code, Tail: tail}
		} else if err != nil {
			err = &StepError{Node: n.Name, Step: label, Cause: err, Tail: tail}
		}
		if err != nil {
			fmt.Fprintf(logw, "<== %s failed: %v\n", label, err)
			rec.Steps[i] = state.StepRecord{Hash: hash, At: time.Now().UTC(), OK: false}
			// Later steps keep their old records so a resumed run can skip them
			// only if they still match; they have not run this time.
			for j := i + 1; j < len(steps); j++ {
				if req.Previous != nil && j < len(req.Previous.Steps) {
					rec.Steps[j] = req.Previous.Steps[j]
				}
			}
			return rec, err
		}
		fmt.Fprintf(logw, "<== %s ok\n", label)
		rec.Steps[i] = state.StepRecord{Hash: hash, At: time.Now().UTC(), OK: true}
	}
	rec.Done = true
	rec.Finished = time.Now().UTC()
	return rec, nil
}

func (r *Runner) runStep(ctx context.Context, req engine.ProvisionRequest, i int, s topology.Step, facts map[string]string, out io.Writer) (int, error) {
	p, t := req.Provider, req.Target
	env := Env(facts)
	for k, v := range s.Env {
		env = append(env, k+"="+os.Expand(v, func(name string) string { return facts[name] }))
	}
	eio := providers.ExecIO{Stdout: out, Stderr: out, Env: env, Dir: "/root"}
	switch {
	case s.Shell != "":
		b, err := os.ReadFile(req.Lab.Topology.Path(s.Shell))
		if err != nil {
			return -1, err
		}
		dst := path.Join(StepDir, fmt.Sprintf("%s-%d-%s", req.Node.Role, i+1, filepath.Base(s.Shell)))
		if err := p.CopyIn(ctx, t, bytes.NewReader(b), dst, 0o755); err != nil {
			return -1, err
		}
		cmd := []string{dst}
		if !bytes.HasPrefix(b, []byte("#!")) {
			cmd = []string{"/bin/sh", dst}
		}
		return p.Exec(ctx, t, cmd, eio)
	case s.Inline != "":
		return p.Exec(ctx, t, []string{"/bin/sh", "-e", "-c", s.Inline}, eio)
	case s.Ansible != "":
		return runPlaybook(ctx, req, s.Ansible, out)
	default:
		return r.copyFile(ctx, req, s.File, out)
	}
}

// runPlaybook runs an Ansible playbook from the host against this node,
// through the lab's inventory (SSH with the lab's key).
func runPlaybook(ctx context.Context, req engine.ProvisionRequest, playbook string, out io.Writer) (int, error) {
	if req.Inventory == "" {
		return -1, fmt.Errorf("no inventory for ansible")
	}
	if _, err := exec.LookPath("ansible-playbook"); err != nil {
		return -1, fmt.Errorf("ansible-playbook is not installed on this machine (Debian package ansible-core)")
	}
	cmd := exec.CommandContext(ctx, "ansible-playbook", "-i", req.Inventory, "--limit", req.Node.Name, req.Lab.Topology.Path(playbook))
	cmd.Dir = req.Lab.Topology.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "ANSIBLE_HOST_KEY_CHECKING=False", "ANSIBLE_NOCOLOR=1",
		"ANSIBLE_RETRY_FILES_ENABLED=0", "ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3")
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, err
	}
	return 0, nil
}

// copyFile copies a file or a folder (as a tar stream) into the node.
func (r *Runner) copyFile(ctx context.Context, req engine.ProvisionRequest, f *topology.FileStep, out io.Writer) (int, error) {
	p, t := req.Provider, req.Target
	src := req.Lab.Topology.Path(f.Src)
	fi, err := os.Stat(src)
	if err != nil {
		return -1, err
	}
	mode := fi.Mode().Perm()
	if f.Mode != "" {
		m, _ := strconv.ParseUint(f.Mode, 8, 32)
		mode = fs.FileMode(m)
	}
	var post []string
	if fi.IsDir() {
		var buf bytes.Buffer
		if err := tarDir(&buf, src, req.Lab.Topology.Path(topology.StateDirName)); err != nil {
			return -1, err
		}
		code, err := p.Exec(ctx, t, []string{"/bin/sh", "-c", `mkdir -p "$1" && tar -x -o -C "$1"`, "sh", f.Dst}, providers.ExecIO{Stdin: &buf, Stdout: out, Stderr: out})
		if err != nil || code != 0 {
			return code, err
		}
		if f.Owner != "" {
			post = append(post, fmt.Sprintf("chown -R %s %s", shell.Quote(f.Owner), shell.Quote(f.Dst)))
		}
		if f.Mode != "" {
			post = append(post, fmt.Sprintf("chmod %s %s", f.Mode, shell.Quote(f.Dst)))
		}
	} else {
		fh, err := os.Open(src)
		if err != nil {
			return -1, err
		}
		defer fh.Close()
		if err := p.CopyIn(ctx, t, fh, f.Dst, mode); err != nil {
			return -1, err
		}
		if f.Owner != "" {
			post = append(post, fmt.Sprintf("chown %s %s", shell.Quote(f.Owner), shell.Quote(f.Dst)))
		}
	}
	if len(post) == 0 {
		return 0, nil
	}
	return p.Exec(ctx, t, []string{"/bin/sh", "-e", "-c", strings.Join(post, "\n")}, providers.ExecIO{Stdout: out, Stderr: out})
}

// tarDir writes a folder as a tar stream, without the lab's state folder
// skip (its private SSH key never reaches a node).
func tarDir(w io.Writer, root, skip string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p == skip {
			return filepath.SkipDir
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "root", "root"
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// CheckLabel names a health check for people.
func CheckLabel(c topology.Check) string {
	switch {
	case c.Command != "":
		return "command " + c.Command
	case c.TCP != 0:
		return fmt.Sprintf("tcp %d", c.TCP)
	default:
		return fmt.Sprintf("http %s → %d", c.HTTP, c.Status)
	}
}

// CheckCommand is the command that runs a check inside a node. TCP and HTTP
// use bash's /dev/tcp, so images need no curl; https needs curl.
func CheckCommand(c topology.Check) []string {
	switch {
	case c.Command != "":
		return []string{"/bin/sh", "-c", c.Command}
	case c.TCP != 0:
		return []string{"/bin/bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%d", c.TCP)}
	}
	u, _ := url.Parse(c.HTTP)
	if u.Scheme == "https" {
		return []string{"/bin/sh", "-c", fmt.Sprintf(`command -v curl >/dev/null || { echo "https checks need curl in the image: add it to packages" >&2; exit 2; }; code=$(curl -sk -o /dev/null -w '%%{http_code}' --max-time 5 %s); [ "$code" = %d ] || { echo "got $code" >&2; exit 1; }`, shell.Quote(c.HTTP), c.Status)}
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "80"
	}
	p := u.RequestURI()
	script := fmt.Sprintf(`exec 3<>/dev/tcp/%s/%s || exit 1
printf 'GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' >&3
read -r -t 5 proto code rest <&3 || { echo "no answer" >&2; exit 1; }
[ "$code" = %d ] || { echo "got $code" >&2; exit 1; }`, host, port, p, u.Host, c.Status)
	return []string{"/bin/bash", "-c", script}
}

// Health runs the node's checks until all pass or the timeout ends.
func (r *Runner) Health(ctx context.Context, req engine.ProvisionRequest, timeout time.Duration) error {
	checks := req.Node.Spec.Health
	if len(checks) == 0 {
		return nil
	}
	deadline := time.Now().Add(timeout)
	pending := make([]int, len(checks))
	for i := range checks {
		pending[i] = i
	}
	lastOut := map[int]string{}
	for {
		var still []int
		for _, i := range pending {
			var out bytes.Buffer
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			code, err := req.Provider.Exec(cctx, req.Target, CheckCommand(checks[i]), providers.ExecIO{Stdout: &out, Stderr: &out})
			cancel()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil || code != 0 {
				msg := strings.TrimSpace(out.String())
				if err != nil {
					msg = err.Error()
				} else if msg == "" {
					msg = fmt.Sprintf("exit %d", code)
				}
				lastOut[i] = msg
				still = append(still, i)
			}
		}
		pending = still
		if len(pending) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			var fails []string
			for _, i := range pending {
				fails = append(fails, fmt.Sprintf("health[%d] (%s): %s", i, CheckLabel(checks[i]), lastOut[i]))
			}
			return fmt.Errorf("node %s: unhealthy after %s (defaults.health_timeout): %s", req.Node.Name, timeout, strings.Join(fails, "; "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(r.HealthPoll):
		}
	}
}
