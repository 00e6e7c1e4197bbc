package host

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// IDCount is how many ids a node's user namespace maps: all that a Debian
// system uses (nobody is 65534).
const IDCount = 65536

// firstID is where lab allocates a range when the host has none (where
// shadow's useradd starts its subordinate ranges too).
const firstID = 100000

// SubIDs returns the start of owner's range of IDCount ids in a subid file
// (/etc/subuid, /etc/subgid: lines OWNER:START:COUNT, OWNER a name or a
// uid), appending one above every other range when owner has none. The
// file is locked while read and written: two labs starting at once add one
// range.
func SubIDs(path string, owner ...string) (uint32, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return 0, fmt.Errorf("user namespaces: %w", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return 0, fmt.Errorf("user namespaces: lock %s: %w", path, err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	content, err := io.ReadAll(f)
	if err != nil {
		return 0, fmt.Errorf("user namespaces: %s: %w", path, err)
	}
	start, next := ParseSubIDs(string(content), owner...)
	if start != 0 {
		return start, nil
	}
	line := fmt.Sprintf("%s:%d:%d\n", owner[0], next, IDCount)
	if len(content) > 0 && content[len(content)-1] != '\n' {
		line = "\n" + line
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		return 0, err
	}
	if _, err := f.WriteString(line); err != nil {
		return 0, fmt.Errorf("user namespaces: add %s's range to %s: %w", owner[0], path, err)
	}
	return next, nil
}

// ParseSubIDs returns the start of owner's first range of at least IDCount
// ids (0: none; owner is any of the names given) and the first id above
// every range the file holds (at least firstID), as useradd would.
func ParseSubIDs(content string, owner ...string) (start, next uint32) {
	next = firstID
	for _, line := range strings.Split(content, "\n") {
		parts := strings.Split(strings.TrimSpace(line), ":")
		if len(parts) != 3 || strings.HasPrefix(parts[0], "#") {
			continue
		}
		s, err1 := strconv.ParseUint(parts[1], 10, 32)
		count, err2 := strconv.ParseUint(parts[2], 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		for _, o := range owner {
			if parts[0] == o && count >= IDCount && start == 0 && s > 0 {
				start = uint32(s)
			}
		}
		if end := s + count; end > uint64(next) && end < 1<<32-IDCount {
			next = uint32(end)
		}
	}
	return start, next
}
