package todomvc

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/labctl/lab/image"
	"github.com/labctl/lab/labtest"
)

// coldCache is an empty image cache whose .deb cache is the shared one's
// (hard links): a cold build, with no download in what is measured.
func coldCache(b *testing.B) string {
	dir, err := os.MkdirTemp("/var/cache", "lab-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = image.RemoveTree(dir) })
	debs := filepath.Join(dir, "debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		b.Fatal(err)
	}
	found, _ := filepath.Glob("/var/cache/lab/debs/*.deb")
	for _, f := range found {
		_ = os.Link(f, filepath.Join(debs, filepath.Base(f)))
	}
	return dir
}

// BenchmarkImageBuild reports a cold build of the lab's images as lab
// builds them (each role's packages as a layer over the provider's base,
// which is bootstrapped once), beside the same images each bootstrapped
// whole, two at a time as lab builds them, in the same run.
func BenchmarkImageBuild(b *testing.B) {
	labtest.Integration(b)
	t := &testing.T{}
	files := copyLab(t)
	l := labtest.New(b, name, files)
	l.MustRun("image", "build") // the .debs, so no download is measured
	var layered, whole []time.Duration
	var count int
	for i := 0; i < b.N; i++ {
		dir := coldCache(b)
		l.Env = []string{"LAB_CACHE_DIR=" + dir}
		start := time.Now()
		l.MustRun("image", "build")
		layered = append(layered, time.Since(start))
		l.Env = nil
		imgs, err := (&image.Cache{Dir: dir}).List()
		if err != nil {
			b.Fatal(err)
		}
		count = 0
		other := &image.Cache{Dir: coldCache(b)}
		g, ctx := errgroup.WithContext(context.Background())
		g.SetLimit(2)
		start = time.Now()
		for _, img := range imgs {
			if img.Spec.Base == nil {
				continue // the base: no role of this lab is only its base
			}
			count++
			spec := img.Spec
			spec.Base = nil
			g.Go(func() error { _, err := other.Ensure(ctx, spec, nil); return err })
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
		whole = append(whole, time.Since(start))
	}
	b.ReportMetric(med(layered), "layered-s")
	b.ReportMetric(med(whole), "whole-s")
	b.Logf("todomvc's images, cold (no image cached, .debs cached): %d images as layers over their base (built too) %.1fs, each bootstrapped whole %.1fs", count, med(layered), med(whole))
}
