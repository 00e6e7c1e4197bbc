package lxd

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
	p.importing.Lock() // the nodes of a lab start at once, most from one image
	defer p.importing.Unlock()
	err := p.importImage(ctx, img)
	if err != nil && strings.Contains(err.Error(), "same fingerprint already exists") {
		// Another lab imported it at the same moment: its alias follows.
		for i := 0; i < 50 && err != nil; i++ {
			time.Sleep(100 * time.Millisecond)
			err = p.c.query(ctx, "GET", "/1.0/images/aliases/"+alias(img), nil, nil)
		}
	}
	if err != nil {
		return fmt.Errorf("image %s: %w", img.Key, err)
	}
	return nil
}

func (p *Provider) importImage(ctx context.Context, img providers.Image) error {
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
			return fmt.Errorf("pack for LXD: %w", err)
		}
	}
	args := []string{"image", "import", meta, rootfs, "--alias", alias(img)}
	if p.c.remote != "" {
		args = append(args, p.c.remote+":")
	}
	_, err = p.c.run(ctx, nil, args...)
	return err
}

// dropImage deletes the image of key from the remote's store unless an
// instance lab made still uses it: lab destroy leaves no image behind. Of
// nodes destroyed at once, the last to look removes it (a second delete
// finds it gone).
func (p *Provider) dropImage(ctx context.Context, key string) error {
	var insts []struct {
		Config map[string]string `json:"config"`
	}
	if err := p.c.query(ctx, "GET", "/1.0/instances?recursion=1", nil, &insts); err != nil {
		return err
	}
	for _, in := range insts {
		if in.Config["user.lab.image"] == key {
			return nil
		}
	}
	var a struct {
		Target string `json:"target"`
	}
	img := providers.Image{Key: key}
	if err := p.c.query(ctx, "GET", "/1.0/images/aliases/"+alias(img), nil, &a); err != nil {
		if notFound(err) {
			return nil
		}
		return err
	}
	if err := p.c.query(ctx, "DELETE", "/1.0/images/"+a.Target, nil, nil); err != nil && !notFound(err) {
		return fmt.Errorf("image %s: %w", key, err)
	}
	return nil
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
