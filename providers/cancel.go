package providers

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// Neither liblxc's attach nor the guest agent can end a command they
// started. So each exec is marked with its own LAB_EXEC variable, and a
// cancelled exec ends every process of the node that still carries its mark
// (the command, and what it started that kept its environment; a service it
// asked systemd to start does not carry it and goes on).

// ExecMarkVar is the variable that marks the processes of one exec.
const ExecMarkVar = "LAB_EXEC"

// NewExecMark returns a fresh mark, as KEY=VALUE for the exec's environment.
func NewExecMark() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return ExecMarkVar + "=" + hex.EncodeToString(b)
}

// KillMarkedScript is a shell script that kills, with SIGKILL, every process
// whose environment holds mark (a KEY=VALUE from NewExecMark).
func KillMarkedScript(mark string) string {
	return fmt.Sprintf(`for p in /proc/[0-9]*; do grep -qxzF '%s' "$p/environ" 2>/dev/null && kill -KILL "${p#/proc/}" 2>/dev/null; done; exit 0`, mark)
}
