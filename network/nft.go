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
