// Package loop runs reconcile passes for as long as sitesync runs.
//
// Anything that may have made the host differ from the desired state
// marks it dirty: a webhook message, the resync timer, a file change that
// fsnotify sees in the managed directories or certbot's live directory,
// startup, or an operator. Triggers never carry work; they only say
// "look again". A single worker runs one full, level-triggered pass at a
// time. Triggers that arrive while a pass runs collapse into exactly one
// follow-up pass (a dirty flag plus a running flag, like a Kubernetes
// workqueue), so a burst of a thousand pushes costs at most two passes.
//
// A trigger may carry an acknowledgement (a broker message's ack). It is
// called once the pass that started after the trigger arrived has
// finished, whatever its outcome, so a crash before then leaves the
// message to be redelivered.
//
// A pass that fails with a transient error is retried after a capped
// exponential backoff; a successful pass resets it. A terminal error (an
// invalid commit) is not retried: the loop waits for the next trigger, and
// the resync timer keeps fetching, so a new commit is found even if its
// webhook was lost.
package loop
