package state

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// LockedError says another process holds the lab's lock.
type LockedError struct {
	PID  int
	Path string
}

func (e *LockedError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("the lab is busy: process %d holds %s (another lab up/destroy?)", e.PID, e.Path)
	}
	return fmt.Sprintf("the lab is busy: %s is held by another process", e.Path)
}

// LockPath is the lab's lock file.
func (s *Store) LockPath() string { return filepath.Join(s.Dir, "lock") }

// Lock takes the lab's lock. With wait false it fails at once, naming the
// holder's PID; with wait true it retries until the lock is free, the
// timeout passes or ctx ends.
//
// The lock is a POSIX record lock (fcntl F_SETLK), not an flock: a record
// lock belongs to the process that took it, is never inherited by a child
// (liblxc forks without exec to start and attach to containers, and such a
// child keeps every descriptor of its parent), and goes when that process
// dies. So after a kill -9 of lab, no child can keep the lab locked. The
// holder's PID comes from the kernel (F_GETLK), and the lock file names the
// last holder, so a lock left by a dead holder is reported as recovered.
func (s *Store) Lock(ctx context.Context, wait bool, timeout time.Duration) error {
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return err
	}
	p := s.LockPath()
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	deadline := time.Now().Add(timeout)
	// Record locks do not exclude the process that holds them, and closing
	// any descriptor of the file drops them: another Store of this process
	// on the same lab is kept out here, before the file is opened.
	for !claim(p) {
		if !wait || time.Now().After(deadline) {
			return &LockedError{PID: os.Getpid(), Path: p}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", p, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		release(p)
		return err
	}
	for {
		err = setLock(f, syscall.F_WRLCK)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EACCES) {
			f.Close()
			release(p)
			return fmt.Errorf("lock %s: %w", p, err)
		}
		if !wait || time.Now().After(deadline) {
			pid := holder(f)
			f.Close()
			release(p)
			return &LockedError{PID: pid, Path: p}
		}
		select {
		case <-ctx.Done():
			f.Close()
			release(p)
			return fmt.Errorf("waiting for %s: %w", p, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	// The file names the last holder; a live one would still hold the lock.
	if last := readPID(f); last > 0 && last != os.Getpid() {
		s.Recovered = last
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	s.lock, s.lockPath = f, p
	return nil
}

var (
	heldMu sync.Mutex
	held   = map[string]bool{}
)

func claim(p string) bool {
	heldMu.Lock()
	defer heldMu.Unlock()
	if held[p] {
		return false
	}
	held[p] = true
	return true
}

func release(p string) {
	heldMu.Lock()
	delete(held, p)
	heldMu.Unlock()
}

func setLock(f *os.File, typ int16) error {
	lk := syscall.Flock_t{Type: typ, Whence: io.SeekStart}
	return syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk)
}

// holder asks the kernel which process holds the lock (0: unknown).
func holder(f *os.File) int {
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk); err == nil && lk.Type != syscall.F_UNLCK {
		return int(lk.Pid)
	}
	return readPID(f)
}

func readPID(f *os.File) int {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	return pid
}

// Unlock releases the lock.
func (s *Store) Unlock() {
	if s.lock == nil {
		return
	}
	_ = s.lock.Truncate(0)
	_ = setLock(s.lock, syscall.F_UNLCK)
	s.lock.Close()
	s.lock = nil
	release(s.lockPath)
}
