//go:build !linux

package logfile

// renameNoReplace renames oldpath to newpath unless newpath exists. Without
// an atomic no-replace rename the check and the rename are two steps; only
// one process (the agent) rotates a given file, so nothing else races them.
func renameNoReplace(oldpath, newpath string) error {
	return renameIfAbsent(oldpath, newpath)
}
