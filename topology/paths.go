package topology

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/labctl/lab/internal/fsx"
)

// StateDirName is the lab's state folder beside its file: never a source.
const StateDirName = ".lab"

// checkSource checks a host path a step copies into nodes or runs: it must
// resolve (symlinks included) inside the lab's folder, or inside one of the
// folders the user's own config allows (Options.HostPaths), never into the
// lab's state folder (its private SSH key), and be a regular file, or with
// dir a folder of regular files, folders and links to them. Devices, FIFOs
// and /proc files would hang lab or read without end.
func (t *Topology) checkSource(at reporter, path, written string, dir bool) {
	full := t.Path(written)
	real, err := filepath.EvalSymlinks(full)
	if err != nil {
		if !(t.missingOK && os.IsNotExist(err)) {
			at(path, "%q: %s", Cut(written), statErr(err))
		}
		return
	}
	if why := t.outside(real); why != "" {
		at(path, "%q %s", Cut(written), why)
		return
	}
	fi, err := os.Stat(real)
	if err != nil {
		at(path, "%q: %s", Cut(written), statErr(err))
		return
	}
	switch {
	case fi.Mode().IsRegular():
	case fi.IsDir() && dir:
		if bad := t.badInFolder(real); bad != "" {
			at(path, "%q: %s", Cut(written), bad)
		}
	case fi.IsDir():
		at(path, "%q is not a regular file (a folder)", Cut(written))
	default:
		at(path, "%q is not a regular file (%s)", Cut(written), fsx.Kind(fi.Mode()))
	}
}

// outside says why a resolved path may not be used ("" when it may).
func (t *Topology) outside(real string) string {
	dir, err := filepath.EvalSymlinks(t.Dir)
	if err != nil {
		dir = t.Dir
	}
	if within(real, filepath.Join(dir, StateDirName)) {
		return "is in the lab's state folder .lab (which holds its private SSH key)"
	}
	if within(real, dir) {
		return ""
	}
	for _, allowed := range t.hostPaths {
		if r, err := filepath.EvalSymlinks(allowed); err == nil && within(real, r) {
			return ""
		}
	}
	return fmt.Sprintf("resolves to %s, outside the lab's folder %s: a lab file names only its own files (allow a host folder with host_paths in your own config)", Cut(real), dir)
}

func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// badInFolder finds the first thing in a folder to copy that cannot be: a
// special file. Links are copied as links, never followed. The lab's state
// folder is skipped (it is never copied).
func (t *Topology) badInFolder(root string) string {
	state, _ := filepath.EvalSymlinks(filepath.Join(t.Dir, StateDirName))
	var bad string
	errStop := errors.New("stop")
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			bad = err.Error()
			return errStop
		}
		if d.IsDir() && state != "" && p == state {
			return filepath.SkipDir
		}
		mode := d.Type()
		switch {
		case mode.IsRegular() || mode.IsDir():
			return nil
		case mode&fs.ModeSymlink != 0:
			return nil // copied as a link, never followed
		}
		bad = fmt.Sprintf("%s is %s, not a regular file", p, fsx.Kind(mode))
		return errStop
	})
	return bad
}
