package logfile

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// compressFile gzips name into name.gz and removes name. It writes a
// temporary file and renames it, so name.gz is either absent or whole, and it
// syncs before removing name, so a crash cannot lose both copies.
func compressFile(name string) (err error) {
	src, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // already compressed by an earlier Complete
	}
	if err != nil {
		return fmt.Errorf("compress: %w", err)
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return fmt.Errorf("compress: %w", err)
	}

	tmp := name + ".gz.tmp"
	dst, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return fmt.Errorf("compress: %w", err)
	}
	defer func() {
		if err != nil {
			dst.Close()
			os.Remove(tmp)
			err = fmt.Errorf("compress %s: %w", name, err)
		}
	}()
	zw, err := gzip.NewWriterLevel(dst, gzip.DefaultCompression)
	if err != nil {
		return err
	}
	zw.Name = filepath.Base(name)
	zw.ModTime = fi.ModTime()
	if _, err := io.Copy(zw, src); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := dst.Sync(); err != nil {
		return err
	}
	if err := os.Rename(tmp, name+".gz"); err != nil {
		return err
	}
	if err := dst.Close(); err != nil {
		return err
	}
	return os.Remove(name)
}
