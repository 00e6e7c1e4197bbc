package lxd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"

	"github.com/labctl/lab/providers"
)

// client runs LXD's own client program, lxc (Debian's lxd-client), as kind
// drives Docker through its CLI: LXD's Go client module is not served to
// us, and lxc query reaches every REST call that has no command. Every
// call names the remote and the project, so the user's default remote and
// project never decide where a lab lands.
type client struct {
	bin     string // the lxc program ("lxc")
	remote  string // "" or "local": the local LXD
	project string // "" : default
	env     []string
}

// where prefixes an instance, image or network name with the remote.
func (c *client) where(name string) string {
	if c.remote == "" {
		return name
	}
	return c.remote + ":" + name
}

// run runs lxc with args in the project and returns its standard output;
// a failure names the remote and the operation, with what lxc said.
func (c *client) run(ctx context.Context, stdin io.Reader, args ...string) ([]byte, error) {
	if c.project != "" {
		args = append([]string{"--project", c.project}, args...)
	}
	return c.lxc(ctx, opOf(args), stdin, args)
}

// lxc runs lxc with args as they are; op names the operation in errors.
func (c *client) lxc(ctx context.Context, op string, stdin io.Reader, args []string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = c.env
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, &Error{Remote: c.remoteName(), Op: op, Msg: "provider lxd drives LXD through its client, lxc, which is not installed (Debian: apt install lxd-client)"}
		}
		return stdout.Bytes(), &Error{Remote: c.remoteName(), Op: op, Msg: said(stderr, err)}
	}
	return stdout.Bytes(), nil
}

// query is one REST call (lxc query): method, path under the remote, a
// body marshalled as JSON (nil: none), the answer decoded into out.
func (c *client) query(ctx context.Context, method, path string, body, out any) error {
	args := []string{"query", "--wait", "-X", method} // --wait: an async answer is the operation's end
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		args = append(args, "--data", string(b))
	}
	if c.project != "" && !strings.Contains(path, "project=") {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + "project=" + c.project
	}
	// The project is in the path: lxc query takes no --project.
	answer, err := c.lxc(ctx, restOp(method, path, body), nil, append(args, c.where(path)))
	if err != nil || out == nil || len(answer) == 0 {
		return err
	}
	return json.Unmarshal(answer, out)
}

func (c *client) remoteName() string {
	if c.remote == "" {
		return "local"
	}
	return c.remote
}

// opOf is the LXD operation a command line is, for errors: "init",
// "network create", "image import".
func opOf(args []string) string {
	var words []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--project" {
			i++
			continue
		}
		if strings.HasPrefix(a, "-") {
			break
		}
		words = append(words, a)
		if len(words) == 2 || (len(words) == 1 && !twoWord[a]) {
			break
		}
	}
	return strings.Join(words, " ")
}

// restOp names a REST call as the user knows the operation: "create
// instance lxdl-db1 on member m3", "start lxdl-db1", "update network
// lab-lxdl-0"; a call it does not know is its method and path.
func restOp(method, path string, body any) string {
	p, query, _ := strings.Cut(path, "?")
	parts := strings.Split(strings.TrimPrefix(p, "/1.0/"), "/")
	kind := map[string]string{"instances": "instance", "networks": "network", "images": "image", "network-acls": "network ACL"}[parts[0]]
	if kind == "" || len(parts) > 3 {
		return method + " " + path
	}
	name := ""
	if len(parts) > 1 {
		name = parts[1]
	} else if m, ok := body.(map[string]any); ok {
		name, _ = m["name"].(string)
	}
	verb := map[string]string{"GET": "get", "POST": "create", "PUT": "update", "PATCH": "update", "DELETE": "delete"}[method]
	if len(parts) == 3 && parts[2] == "state" {
		if m, ok := body.(map[string]any); ok && method == "PUT" {
			a, _ := m["action"].(string)
			return strings.TrimSpace(a + " " + name)
		}
		return "state of " + name
	}
	if len(parts) == 3 && parts[0] == "images" && parts[1] == "aliases" {
		kind, name = "image", parts[2]
	}
	op := strings.TrimSpace(verb + " " + kind + " " + name)
	for _, kv := range strings.Split(query, "&") {
		if m, ok := strings.CutPrefix(kv, "target="); ok {
			op += " on member " + m
		}
	}
	return op
}

var twoWord = map[string]bool{"network": true, "image": true, "cluster": true, "profile": true, "storage": true, "file": true, "config": true, "project": true}

// Error is a call to LXD that failed: on which remote, which operation,
// and what LXD said.
type Error struct {
	Remote, Op, Msg string
}

func (e *Error) Error() string {
	return fmt.Sprintf("lxd %s: %s: %s", e.Remote, e.Op, e.Msg)
}

// notFound tells whether LXD said the thing does not exist.
func notFound(err error) bool {
	e, ok := err.(*Error)
	return ok && (strings.Contains(e.Msg, "not found") || strings.Contains(e.Msg, "Not Found"))
}

// exec runs lxc with args wired to eio and returns the exit code of the
// command it ran in the instance; err only when lxc could not run it.
func (c *client) exec(ctx context.Context, args []string, eio providers.ExecIO) (int, error) {
	if c.project != "" {
		args = append([]string{"--project", c.project}, args...)
	}
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = c.env
	cmd.Stdin, cmd.Stdout = eio.Stdin, eio.Stdout
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if eio.Stderr != nil {
		cmd.Stderr = io.MultiWriter(eio.Stderr, &stderr)
	}
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		// lxc itself failed (no such instance, not running): it exits 1
		// with its "Error: " line, and the command never ran.
		if ee.ExitCode() == 1 && strings.HasPrefix(strings.TrimSpace(stderr.String()), "Error: ") {
			return -1, &Error{Remote: c.remoteName(), Op: "exec", Msg: said(stderr, err)}
		}
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, err
	}
	return 0, nil
}

// said is what lxc said on its standard error, without its "Error: ".
func said(stderr bytes.Buffer, err error) string {
	msg := strings.TrimPrefix(strings.TrimSpace(stderr.String()), "Error: ")
	if msg == "" {
		return err.Error()
	}
	return msg
}
