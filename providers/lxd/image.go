package lxd

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/labctl/lab/image"
	"github.com/labctl/lab/providers"
)

// alias is how an image lab built is known in LXD's image store: by its
// content key, so it is imported once per key and found again.
func alias(img providers.Image) string { return "lab-" + img.Key } // no "/": it is part of a REST path

// ensureImage imports img into the remote's image store unless it is
// there: LXD's split format, a metadata tar and the tree as a tar.zst (the
// form root's cache keeps for users, image/usershare.go, or one made here).
func (p *Provider) ensureImage(ctx context.Context, img providers.Image) error {
	if err := p.c.query(ctx, "GET", "/1.0/images/aliases/"+alias(img), nil, nil); err == nil {
		return nil
	} else if !notFound(err) {
		return err
	}
	tmp, err := os.MkdirTemp("", "lab-lxd-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	meta := filepath.Join(tmp, "meta.tar")
	if err := os.WriteFile(meta, metadataTar(img.Key, time.Now()), 0o600); err != nil {
		return err
	}
	rootfs := image.SharedForm(img.RootFS)
	if _, err := os.Stat(rootfs); err != nil {
		rootfs = filepath.Join(tmp, "rootfs.tar.zst")
		if err := image.PackTree(ctx, img.RootFS, rootfs); err != nil {
			return fmt.Errorf("image %s: for LXD: %w", img.Key, err)
		}
	}
	args := []string{"image", "import", meta, rootfs, "--alias", alias(img)}
	if p.c.remote != "" {
		args = append(args, p.c.remote+":")
	}
	_, err = p.c.run(ctx, nil, args...)
	return err
}

// metadataTar is an LXD image's metadata.yaml in a tar.
func metadataTar(key string, now time.Time) []byte {
	y := fmt.Sprintf("architecture: x86_64\ncreation_date: %d\nproperties:\n  description: lab image %s\n  os: debian\n", now.Unix(), key)
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	_ = tw.WriteHeader(&tar.Header{Name: "metadata.yaml", Mode: 0o644, Size: int64(len(y)), ModTime: now})
	_, _ = tw.Write([]byte(y))
	_ = tw.Close()
	return b.Bytes()
}
