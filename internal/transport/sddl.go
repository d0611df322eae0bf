package transport

import "strings"

// pipeSDDL returns the security descriptor, in SDDL, of a channel's named
// pipe: full access for SYSTEM, Administrators and ownerSID (the account the
// server runs as), read and write for groupSID if it is not empty. The DACL
// is protected (P), so nothing is inherited.
//
// Read and write is what a client needs (and what Docker grants its
// docker-users group). On a pipe, write access includes
// FILE_CREATE_PIPE_INSTANCE, so a member of the group could also create an
// instance of the same pipe name: grant Group only to accounts as trusted as
// the server's own clients.
//
// It is pure so that it is tested on every platform; only Windows uses it.
func pipeSDDL(ownerSID, groupSID string) string {
	var b strings.Builder
	b.WriteString("D:P(A;;GA;;;SY)(A;;GA;;;BA)")
	if ownerSID != "" {
		b.WriteString("(A;;GA;;;" + ownerSID + ")")
	}
	if groupSID != "" {
		b.WriteString("(A;;GRGW;;;" + groupSID + ")")
	}
	return b.String()
}
