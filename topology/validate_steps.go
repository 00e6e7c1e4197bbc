package topology

import (
	"net/netip"
	"net/url"
	"os"
	"strings"
)

func (t *Topology) validateStep(at reporter, p string, s Step, r *Role) {
	kinds := 0
	if s.Shell != "" {
		kinds++
	}
	if s.Inline != "" {
		kinds++
	}
	if s.File != nil {
		kinds++
	}
	if s.Ansible != "" {
		kinds++
	}
	if kinds != 1 {
		at(p, "want exactly one of shell, inline, file or ansible")
		return
	}
	if strings.ContainsRune(s.Inline, 0) {
		at(p+".inline", "holds a NUL byte")
	}
	for k, v := range s.Env {
		if strings.ContainsRune(v, 0) {
			at(p+".env."+k, "holds a NUL byte")
		}
	}
	if s.Ansible != "" {
		t.checkSource(at, p+".ansible", s.Ansible, false)
		if !r.SSHEnabled() {
			at(p+".ansible", "ansible reaches nodes over SSH: set ssh: true on role %s (or in defaults)", r.Role)
		}
		if len(s.Env) > 0 {
			at(p+".env", "env applies to shell and inline steps only")
		}
	}
	if s.Run != RunChanged && s.Run != RunAlways {
		at(p+".run", "%q: want %q or %q", s.Run, RunChanged, RunAlways)
	}
	for k := range s.Env {
		if !envKeyRe.MatchString(k) {
			at(p+".env."+k, "%q is not an environment variable name", k)
		}
	}
	if s.Shell != "" {
		t.checkSource(at, p+".shell", s.Shell, false)
	}
	if f := s.File; f != nil {
		if len(s.Env) > 0 {
			at(p+".env", "env applies to shell and inline steps only")
		}
		if f.Src == "" {
			at(p+".file.src", "required: the file or folder to copy, relative to the lab file")
		} else {
			t.checkSource(at, p+".file.src", f.Src, true)
		}
		if !strings.HasPrefix(f.Dst, "/") {
			at(p+".file.dst", "%q: want an absolute path in the node", f.Dst)
		}
		if f.Mode != "" && !modeRe.MatchString(f.Mode) {
			at(p+".file.mode", "%q: want an octal mode such as 0644", f.Mode)
		}
		if f.Owner != "" && !ownerRe.MatchString(f.Owner) {
			at(p+".file.owner", "%q: want USER or USER:GROUP", f.Owner)
		}
	}
}

func statErr(err error) string {
	if os.IsNotExist(err) {
		return "no such file (paths are relative to the lab file)"
	}
	return err.Error()
}

func validateCheck(at reporter, p string, c Check) {
	kinds := 0
	if c.Command != "" {
		kinds++
		if strings.ContainsRune(c.Command, 0) {
			at(p+".command", "holds a NUL byte")
		}
	}
	if c.TCP != 0 {
		kinds++
	}
	if c.HTTP != "" {
		kinds++
	}
	if kinds != 1 {
		at(p, "want exactly one of command, tcp or http")
		return
	}
	if c.TCP != 0 && (c.TCP < 1 || c.TCP > 65535) {
		at(p+".tcp", "%d: want a port from 1 to 65535", c.TCP)
	}
	if c.HTTP != "" {
		u, err := url.Parse(c.HTTP)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			at(p+".http", "%q: want a URL such as http://localhost/", Cut(c.HTTP))
		} else if !localHost(u.Hostname()) {
			at(p+".http", "%q: a health check asks the node itself: use localhost or a loopback address", Cut(c.HTTP))
		}
	}
	if c.Status != 0 && (c.Status < 100 || c.Status > 599) {
		at(p+".status", "%d: want an HTTP status from 100 to 599", c.Status)
	}
	if c.Status != 0 && c.HTTP == "" {
		at(p+".status", "status goes with http")
	}
}

// localHost tells whether a health check's host is the node itself.
func localHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.IsLoopback()
}
