package engine

import (
	"net/netip"
	"os"

	"github.com/labctl/lab/image"
	"github.com/labctl/lab/providers"
	"github.com/labctl/lab/state"
	"github.com/labctl/lab/topology"
)

// ContainerID is the provider's name for a lab's node: LAB_NODE. Lab and
// node names hold no '_', so no two labs' nodes share an id (with '-', lab
// adv-a's node b1 and lab adv's node a-b1 would both be adv-a-b1).
func ContainerID(lab, node string) string { return lab + "_" + node }

// target is a node of the lab file as its provider knows it.
func (e *Engine) target(lab *topology.Lab, n topology.Node, img *image.Image) providers.Node {
	t := providers.Node{Lab: lab.Name, Name: n.Name, ID: ContainerID(lab.Name, n.Name), CPUs: n.CPUs, Memory: n.Memory, Accel: n.Accel, Owner: e.owner(),
		Unprivileged: n.Unprivileged, Nesting: n.Nesting, Target: n.Target}
	for _, ifc := range n.Interfaces {
		pi := providers.Interface{Bridge: ifc.Bridge, Addr: netip.PrefixFrom(ifc.Addr, ifc.Subnet.Bits())}
		if ifc.Addr6.IsValid() {
			pi.Addr6 = netip.PrefixFrom(ifc.Addr6, ifc.Subnet6.Bits())
		}
		t.Interfaces = append(t.Interfaces, pi)
	}
	if img != nil {
		t.Image = providers.Image{Key: img.Key, RootFS: img.RootFS}
	}
	return t
}

// nodeTarget is a node of the lab file as its provider knows it, under the
// id the state records for it when it has one (nodes made before ids were
// LAB_NODE keep theirs).
func (c *call) nodeTarget(n topology.Node, img *image.Image) providers.Node {
	t := c.e.target(c.lab, n, img)
	c.mu.Lock()
	if rec := c.st.Nodes[n.Name]; rec != nil && rec.ID != "" {
		t.ID = rec.ID
	}
	c.mu.Unlock()
	return t
}

// recordTarget is a recorded node, as its provider knows it.
func (e *Engine) recordTarget(st *state.State, rec *state.Node) providers.Node {
	return providers.Node{Lab: st.Lab, Name: rec.Name, ID: rec.ID, Owner: e.owner()}
}

func (c *call) logFile(node string) (*os.File, error) {
	return os.OpenFile(c.e.LogPath(node), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
}
