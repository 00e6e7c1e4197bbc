package provision

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/labctl/lab/internal/shell"
	"github.com/labctl/lab/providers"
	"github.com/labctl/lab/topology"
)

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
func (r *Runner) Health(ctx context.Context, req Request, timeout time.Duration) error {
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
