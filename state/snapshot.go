package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/labctl/lab/internal/fsx"
	"github.com/labctl/lab/internal/userns"
)

// Snapshot is a saved copy of some or all of a lab's nodes: their own
// disks (in SnapshotDir/NAME/nodes/NODE) and, in snapshot.json, the lab's
// records as they were.
type Snapshot struct {
	Version int       `json:"version"`
	Name    string    `json:"name"`
	Lab     string    `json:"lab"`
	Created time.Time `json:"created"`
	// Whole: every node of the lab, frozen together.
	Whole bool     `json:"whole"`
	Nodes []string `json:"nodes"`
	// FileHash is the lab file's hash when it was saved.
	FileHash string `json:"file_hash"`
	// State is the lab's state then (its nodes' records, provisioning
	// included), for restore and up --from.
	State *State `json:"state"`
	// Frozen is how long the nodes were frozen, in seconds.
	Frozen float64 `json:"frozen_seconds"`
	Size   int64   `json:"size"`
}

var snapNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// CheckSnapshotName refuses names that are not one plain word.
func CheckSnapshotName(name string) error {
	if !snapNameRe.MatchString(name) {
		return fmt.Errorf("snapshot name %q: use letters, digits, '.', '_' and '-' (no '/'), at most 64", name)
	}
	return nil
}

// SnapshotDir is where the lab's snapshots are kept.
func (s *Store) SnapshotDir() string { return filepath.Join(s.Dir, "snapshots") }

// SnapshotPath is one snapshot's folder.
func (s *Store) SnapshotPath(name string) string { return filepath.Join(s.SnapshotDir(), name) }

// NodeDir is where a node's disk is in a snapshot's folder.
func NodeDir(snapDir, node string) string { return filepath.Join(snapDir, "nodes", node) }

// NewSnapshotDir makes a temporary folder for a snapshot being saved: a
// failed or killed save leaves no half snapshot, only this, which the next
// save or list removes.
func (s *Store) NewSnapshotDir(name string) (string, error) {
	if err := os.MkdirAll(s.SnapshotDir(), 0o700); err != nil {
		return "", err
	}
	s.cleanSnapshotTemps()
	return os.MkdirTemp(s.SnapshotDir(), ".saving-"+name+"-"+strconv.Itoa(os.Getpid())+"-")
}

// cleanSnapshotTemps removes temporary folders of saves whose process is gone.
func (s *Store) cleanSnapshotTemps() {
	entries, _ := os.ReadDir(s.SnapshotDir())
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), ".")
		if !ok {
			continue
		}
		f := strings.Split(rest, "-")
		if len(f) < 3 {
			continue
		}
		pid, err := strconv.Atoi(f[len(f)-2])
		if err == nil && pid != os.Getpid() && !pidAlive(pid) {
			_ = userns.RemoveAll(filepath.Join(s.SnapshotDir(), e.Name()))
		}
	}
}

func pidAlive(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}

// CommitSnapshot writes the snapshot's record into its temporary folder and
// renames the folder into place, in one step.
func (s *Store) CommitSnapshot(tmp string, snap *Snapshot) error {
	snap.Version = Version
	b, err := json.MarshalIndent(snap, "", "  ")
	if err != nil {
		return err
	}
	if err := fsx.WriteAtomic(filepath.Join(tmp, "snapshot.json"), append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, s.SnapshotPath(snap.Name))
}

// LoadSnapshot reads a snapshot's record.
func (s *Store) LoadSnapshot(name string) (*Snapshot, error) {
	if err := CheckSnapshotName(name); err != nil {
		return nil, err
	}
	return ReadSnapshot(s.SnapshotPath(name))
}

// ReadSnapshot reads the record of the snapshot in dir.
func ReadSnapshot(dir string) (*Snapshot, error) {
	b, err := fsx.ReadRegular(filepath.Join(dir, "snapshot.json"), MaxSize)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoSnapshot
	}
	if err != nil {
		return nil, err
	}
	var snap Snapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	if snap.Version != Version || snap.State == nil {
		return nil, fmt.Errorf("%s: not a snapshot this lab understands", dir)
	}
	if err := snap.State.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return &snap, nil
}

// ErrNoSnapshot is a snapshot that is not there.
var ErrNoSnapshot = errors.New("no such snapshot")

// ListSnapshots returns the lab's snapshots, oldest first.
func (s *Store) ListSnapshots() ([]*Snapshot, error) {
	s.cleanSnapshotTemps()
	entries, err := os.ReadDir(s.SnapshotDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Snapshot
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		snap, err := ReadSnapshot(s.SnapshotPath(e.Name()))
		if err != nil {
			continue
		}
		out = append(out, snap)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// RemoveSnapshot deletes a snapshot.
func (s *Store) RemoveSnapshot(name string) error {
	if _, err := s.LoadSnapshot(name); err != nil {
		return err
	}
	return userns.RemoveAll(s.SnapshotPath(name)) // a user's nodes' files are its namespace's
}
