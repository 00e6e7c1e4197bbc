package network

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// nftScript runs an nft script as one transaction: all of it or none.
func nftScript(ctx context.Context, script string) error {
	cmd := exec.CommandContext(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nftables: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// deleteTables deletes those of tables ("FAMILY NAME") that exist, in one
// transaction after one listing (nft 1.0.6 has no "destroy table", and a
// delete of a missing table fails the whole script). A destroy used to run
// a list and a delete per table; each nft costs 10-30 ms on a busy host.
func deleteTables(ctx context.Context, tables ...string) error {
	out, err := run(ctx, "nft", "list", "tables")
	if errors.Is(err, exec.ErrNotFound) {
		return nil // no nft: no tables either
	}
	if err != nil {
		return err
	}
	present := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "table "); ok {
			present[rest] = true
		}
	}
	var b strings.Builder
	for _, t := range tables {
		if present[t] {
			fmt.Fprintf(&b, "delete table %s\n", t)
		}
	}
	if b.Len() == 0 {
		return nil
	}
	return nftScript(ctx, b.String())
}

// labTables are a lab's nftables tables other than its networks' rules:
// its delay lines', its firewall's and partitions'.
func labTables(lab string) []string {
	return []string{"netdev " + DelayTable(lab), "bridge " + Table(lab), "inet " + PolicyTable(lab)}
}

// RemoveLab lifts a lab's firewall, partitions and delays: its tables go in
// one transaction and its delay lines end (destroy, once its nodes are
// gone). The networks' own rules go with Remove, after their bridges.
func RemoveLab(ctx context.Context, lab string) error {
	return removeTables(ctx, lab, labTables(lab)...)
}

// removeTables deletes those of a lab's tables that exist, then ends the
// lab's delay lines (their diverting rules are gone with the tables).
func removeTables(ctx context.Context, lab string, tables ...string) error {
	err := deleteTables(ctx, tables...)
	for _, pid := range DelayPIDs(lab) {
		stopPID(pid)
	}
	return err
}
