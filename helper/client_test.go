package helper

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/labctl/lab/network"
)

// fakeHelper stands for lab-net: it records each request it is given.
func fakeHelper(t *testing.T) (*Client, func() []Request) {
	dir := t.TempDir()
	log := filepath.Join(dir, "requests")
	script := filepath.Join(dir, "lab-net")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\ncat >> "+log+"\necho >> "+log+"\n"), 0o755))
	return &Client{Path: script, look: &network.Manager{Owner: "uid 1000"}}, func() []Request {
		b, err := os.ReadFile(log)
		require.NoError(t, err)
		var out []Request
		dec := json.NewDecoder(bytesReader(b))
		for dec.More() {
			var r Request
			require.NoError(t, dec.Decode(&r))
			out = append(out, r)
		}
		return out
	}
}

func TestClientAsksTheHelper(t *testing.T) {
	c, requests := fakeHelper(t)
	ctx := context.Background()
	n := network.Net{Bridge: "lab-my-lab-1", Subnet: netip.MustParsePrefix("10.97.9.0/24"), Subnet6: netip.MustParsePrefix("fd00:1::/64"), Domain: "my-lab.lab"}
	require.NoError(t, c.Ensure(ctx, "my-lab", n))
	require.NoError(t, c.SetHosts("lab-my-lab-1", "10.97.9.11 db1\nfd00:1::11 db1\n10.97.9.12 web1 www\n"))
	require.NoError(t, c.Remove(ctx, "my-lab", "lab-my-lab-1"))
	got := requests()
	require.Len(t, got, 3)
	assert.Equal(t, Request{Op: "up", Lab: "my-lab", Index: 1, Subnet: "10.97.9.0/24", Subnet6: "fd00:1::/64", Domain: "my-lab.lab"}, got[0])
	assert.Equal(t, Request{Op: "hosts", Lab: "my-lab", Index: 1, Hosts: []Host{
		{Addr: "10.97.9.11", Names: []string{"db1"}}, {Addr: "fd00:1::11", Names: []string{"db1"}},
		{Addr: "10.97.9.12", Names: []string{"web1", "www"}}}}, got[1])
	assert.Equal(t, Request{Op: "down", Lab: "my-lab", Index: 1}, got[2])

	err := c.Remove(ctx, "other", "lab-my-lab-1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bridge lab-my-lab-1 is not lab other's")
	assert.Error(t, c.SetHosts("br0", ""), "not a lab's bridge")
}

func TestClientAsksForThePolicy(t *testing.T) {
	c, requests := fakeHelper(t)
	ctx := context.Background()
	p := network.Policy{Lab: "l", Ports: []network.Port{{Node: "a1", Name: "veth1000_abcd", Bridge: "lab-l-0", Addr: netip.MustParseAddr("10.97.9.11")}}}
	require.NoError(t, c.ApplyPolicy(ctx, p))
	require.NoError(t, c.RemoveLab(ctx, "l"))
	got := requests()
	require.Len(t, got, 2)
	assert.Equal(t, Request{Op: "policy", Lab: "l", Policy: &p}, got[0])
	assert.Equal(t, Request{Op: "clear", Lab: "l"}, got[1])
}

func TestClientSaysHowToSetUp(t *testing.T) {
	c := &Client{Path: filepath.Join(t.TempDir(), "absent")}
	err := c.Ensure(context.Background(), "l", network.Net{Bridge: "lab-l-0", Subnet: netip.MustParsePrefix("10.97.9.0/24")})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "lab host setup --user")
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
