package libvirt

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/labctl/lab/providers"
)

// agent runs one guest agent command and decodes its "return".
func (p *Provider) agent(n providers.Node, cmd string, args any, out any) error {
	l, d, err := p.domain(n)
	if err != nil {
		return err
	}
	req, _ := json.Marshal(map[string]any{"execute": cmd, "arguments": args})
	res, err := l.QEMUDomainAgentCommand(d, string(req), 30, 0)
	if err != nil {
		return fmt.Errorf("node %s: guest agent %s: %w", n.Name, cmd, err)
	}
	if len(res) == 0 {
		return nil
	}
	var env struct {
		Return json.RawMessage `json:"return"`
	}
	if err := json.Unmarshal([]byte(res[0]), &env); err != nil {
		return err
	}
	if out != nil {
		return json.Unmarshal(env.Return, out)
	}
	return nil
}

// Exec runs a command through the guest agent (guest-exec). Output arrives
// when the command ends.
func (p *Provider) Exec(ctx context.Context, n providers.Node, cmd []string, eio providers.ExecIO) (int, error) {
	if len(cmd) == 0 {
		return -1, errors.New("exec: no command")
	}
	mark := providers.NewExecMark()
	args := map[string]any{
		"path":           "/bin/sh",
		"arg":            append([]string{"-c", `cd "$LAB_CWD" 2>/dev/null || cd /; unset LAB_CWD; "$@"`, "sh"}, cmd...),
		"env":            append(append(append([]string{}, providers.BaseEnv...), eio.Env...), "LAB_CWD="+orDefault(eio.Dir, "/root"), mark),
		"capture-output": true,
	}
	if eio.Stdin != nil {
		in, err := io.ReadAll(eio.Stdin)
		if err != nil {
			return -1, err
		}
		args["input-data"] = base64.StdEncoding.EncodeToString(in)
	}
	var started struct {
		PID int `json:"pid"`
	}
	if err := p.agent(n, "guest-exec", args, &started); err != nil {
		return -1, err
	}
	delay := 20 * time.Millisecond
	for {
		var st struct {
			Exited   bool   `json:"exited"`
			ExitCode int    `json:"exitcode"`
			Signal   int    `json:"signal"`
			OutData  string `json:"out-data"`
			ErrData  string `json:"err-data"`
		}
		if err := p.agent(n, "guest-exec-status", map[string]any{"pid": started.PID}, &st); err != nil {
			return -1, err
		}
		if st.Exited {
			for _, o := range []struct {
				data string
				w    io.Writer
			}{{st.OutData, eio.Stdout}, {st.ErrData, eio.Stderr}} {
				if o.w == nil || o.data == "" {
					continue
				}
				b, err := base64.StdEncoding.DecodeString(o.data)
				if err != nil {
					return -1, err
				}
				_, _ = o.w.Write(b)
			}
			if st.Signal != 0 {
				return 128 + st.Signal, nil
			}
			return st.ExitCode, nil
		}
		select {
		case <-ctx.Done():
			// The agent cannot end what it started: end what carries the mark.
			_ = p.agent(n, "guest-exec", map[string]any{"path": "/bin/sh", "arg": []string{"-c", providers.KillMarkedScript(mark)}}, nil)
			return -1, ctx.Err()
		case <-time.After(delay):
		}
		if delay < 250*time.Millisecond {
			delay *= 2
		}
	}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func (p *Provider) CopyIn(ctx context.Context, n providers.Node, src io.Reader, dst string, mode fs.FileMode) error {
	return providers.CopyInWithExec(ctx, p, n, src, dst, mode)
}

// Shell opens the VM's serial console, where root is logged in (leave with
// Ctrl-]); a command runs through the agent instead.
func (p *Provider) Shell(ctx context.Context, n providers.Node, cmd []string) error {
	if len(cmd) > 0 {
		code, err := p.Exec(ctx, n, cmd, providers.ExecIO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
		if err != nil {
			return err
		}
		if code != 0 {
			return &providers.ExitError{Code: code}
		}
		return nil
	}
	fmt.Fprintf(os.Stderr, "lab: console of %s (leave with Ctrl-])\n", n.Name)
	c := exec.CommandContext(ctx, "virsh", "-c", string(p.uri()), "console", "--force", n.ID)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	return c.Run()
}

// WriteFiles writes files through the agent's file API (no process to
// start, which is slow under TCG), each to PATH.lab-new, then renames them
// all into place and runs script in one exec.
func (p *Provider) WriteFiles(ctx context.Context, n providers.Node, files map[string]string, script string) error {
	paths := make([]string, 0, len(files))
	for f := range files {
		paths = append(paths, f)
	}
	sort.Strings(paths)
	madeDirs := false
	for _, f := range paths {
		err := p.writeFile(n, f+".lab-new", files[f])
		if err != nil && !madeDirs {
			// Missing folders: make all of them at once, then try again.
			dirs := []string{"-p"}
			for _, g := range paths {
				dirs = append(dirs, filepath.Dir(g))
			}
			if code, xerr := p.Exec(ctx, n, append([]string{"mkdir"}, dirs...), providers.ExecIO{}); xerr != nil || code != 0 {
				return fmt.Errorf("mkdir: exit %d: %v (after %v)", code, xerr, err)
			}
			madeDirs = true
			err = p.writeFile(n, f+".lab-new", files[f])
		}
		if err != nil {
			return err
		}
	}
	var stderr bytes.Buffer
	cmd := append([]string{"/bin/sh", "-c", `for f; do chmod 0644 "$f.lab-new"; mv -f "$f.lab-new" "$f"; done` + "\n" + script, "sh"}, paths...)
	code, err := p.Exec(ctx, n, cmd, providers.ExecIO{Stderr: &stderr})
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("exit %d: %s", code, strings.TrimSpace(stderr.String()))
	}
	return nil
}

func (p *Provider) writeFile(n providers.Node, path, content string) error {
	var handle int
	if err := p.agent(n, "guest-file-open", map[string]any{"path": path, "mode": "w"}, &handle); err != nil {
		return err
	}
	err := p.agent(n, "guest-file-write", map[string]any{"handle": handle, "buf-b64": base64.StdEncoding.EncodeToString([]byte(content))}, nil)
	if cerr := p.agent(n, "guest-file-close", map[string]any{"handle": handle}, nil); err == nil {
		err = cerr
	}
	return err
}
