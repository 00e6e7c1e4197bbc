package libvirt

import (
	"bytes"
	"context"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/labctl/lab/providers"
)

// A domain's description records whose node it is:
// "lab NAME, node NODE, owner DIR".
func description(n providers.Node) string {
	return "lab " + n.Lab + ", node " + n.Name + ", owner " + n.Owner
}

func parseDescription(s string) (f providers.Found, ok bool) {
	rest, ok := strings.CutPrefix(s, "lab ")
	if !ok {
		return f, false
	}
	f.Lab, rest, ok = strings.Cut(rest, ", node ")
	if !ok {
		return f, false
	}
	f.Node, f.Owner, _ = strings.Cut(rest, ", owner ")
	return f, true
}

func xmlText(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// checkOwner refuses a domain that exists but is not this lab's node.
func (p *Provider) checkOwner(l *golibvirt.Libvirt, d golibvirt.Domain, n providers.Node) error {
	desc, err := l.DomainGetXMLDesc(d, 0)
	if err != nil {
		return err
	}
	var dom struct {
		Description string `xml:"description"`
	}
	_ = xml.Unmarshal([]byte(desc), &dom)
	f, ok := parseDescription(dom.Description)
	if !ok || f.Lab != n.Lab || f.Node != n.Name || (f.Owner != "" && n.Owner != "" && f.Owner != n.Owner) {
		return &providers.OwnerError{Node: n.Name, ID: n.ID, Owner: f.Owner}
	}
	return nil
}

// List returns the VMs lab made, from libvirt's saved definitions (so
// finding a lab's VMs needs no running daemon), and the disks of VMs whose
// definition is gone. It never starts libvirtd.
func (p *Provider) List(ctx context.Context) ([]providers.Found, error) {
	var out []providers.Found
	seen := map[string]bool{}
	files, _ := filepath.Glob(filepath.Join(p.dirs().Configs, "*.xml"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		var dom struct {
			Name        string `xml:"name"`
			Description string `xml:"description"`
		}
		if xml.Unmarshal(b, &dom) != nil {
			continue
		}
		f, ok := parseDescription(dom.Description)
		if !ok || dom.Name == "" {
			continue
		}
		f.Provider, f.ID, f.State = p.Name(), dom.Name, providers.Unknown
		seen[dom.Name] = true
		out = append(out, f)
	}
	disks, _ := filepath.Glob(filepath.Join(p.dirs().Disks, "*.qcow2"))
	for _, d := range disks {
		id := strings.TrimSuffix(filepath.Base(d), ".qcow2")
		lab, node, ok := strings.Cut(id, "_")
		if seen[id] || !ok {
			continue
		}
		out = append(out, providers.Found{Provider: p.Name(), ID: id, Lab: lab, Node: node, State: providers.Absent})
	}
	return out, nil
}
