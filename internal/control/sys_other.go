//go:build !unix

package control

import "os"

// maxPathLen is Windows' UNIX_PATH_MAX less the terminating NUL.
var maxPathLen = 107

// owner is unknown: there are no uids here, and the directory's ACL is what
// guards it.
func owner(os.FileInfo) (int, bool) { return 0, false }
