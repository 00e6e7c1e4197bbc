package provision

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/labctl/lab/internal/shell"
	"github.com/labctl/lab/providers"
	"github.com/labctl/lab/topology"
)

// copyFile copies a file or a folder (as a tar stream) into the node.
func (r *Runner) copyFile(ctx context.Context, req Request, f *topology.FileStep, out io.Writer) (int, error) {
	p, t := req.Provider, req.Target
	src := req.Lab.Topology.Path(f.Src)
	fi, err := os.Stat(src)
	if err != nil {
		return -1, err
	}
	mode := fi.Mode().Perm()
	if f.Mode != "" {
		m, _ := strconv.ParseUint(f.Mode, 8, 32)
		mode = fs.FileMode(m)
	}
	var post []string
	if fi.IsDir() {
		var buf bytes.Buffer
		if err := tarDir(&buf, src, req.Lab.Topology.Path(topology.StateDirName)); err != nil {
			return -1, err
		}
		code, err := p.Exec(ctx, t, []string{"/bin/sh", "-c", `mkdir -p "$1" && tar -x -o -C "$1"`, "sh", f.Dst}, providers.ExecIO{Stdin: &buf, Stdout: out, Stderr: out})
		if err != nil || code != 0 {
			return code, err
		}
		if f.Owner != "" {
			post = append(post, fmt.Sprintf("chown -R %s %s", shell.Quote(f.Owner), shell.Quote(f.Dst)))
		}
		if f.Mode != "" {
			post = append(post, fmt.Sprintf("chmod %s %s", f.Mode, shell.Quote(f.Dst)))
		}
	} else {
		fh, err := os.Open(src)
		if err != nil {
			return -1, err
		}
		defer fh.Close()
		if err := p.CopyIn(ctx, t, fh, f.Dst, mode); err != nil {
			return -1, err
		}
		if f.Owner != "" {
			post = append(post, fmt.Sprintf("chown %s %s", shell.Quote(f.Owner), shell.Quote(f.Dst)))
		}
	}
	if len(post) == 0 {
		return 0, nil
	}
	return p.Exec(ctx, t, []string{"/bin/sh", "-e", "-c", strings.Join(post, "\n")}, providers.ExecIO{Stdout: out, Stderr: out})
}

// tarDir writes a folder as a tar stream, without the lab's state folder
// skip (its private SSH key never reaches a node).
func tarDir(w io.Writer, root, skip string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p == skip {
			return filepath.SkipDir
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "root", "root"
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
