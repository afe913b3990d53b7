// Package commitstatus reports reconcile outcomes back to GitHub as commit
// statuses (pending, success, failure), as the deployer sitesync replaces
// did, so a push shows on GitHub whether each host applied it.
package commitstatus
