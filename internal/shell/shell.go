// Package shell quotes words for /bin/sh.
package shell

import "strings"

// Quote makes s one word for /bin/sh, whatever it holds.
func Quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
