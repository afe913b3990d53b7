package commitstatus

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// State is a commit status state.
type State string

// The states sitesync sets.
const (
	Pending State = "pending"
	Success State = "success"
	Failure State = "failure"
	Error   State = "error"
)

// maxDescription is GitHub's limit on a status description.
const maxDescription = 140

var (
	repoRe = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)
	shaRe  = regexp.MustCompile(`^[0-9a-f]{40}$`)
)

// Client sets commit statuses on one repository. It is safe for concurrent
// use.
type Client struct {
	// APIURL is the API base, e.g. https://api.github.com or
	// https://github.example.com/api/v3.
	APIURL string
	// Token authenticates (a token with commit status write access). It is
	// never put in an error.
	Token string
	// Repository is "owner/name".
	Repository string
	// Context tells this host's statuses from others' ("sitesync/web1").
	Context string
	// HTTP is the client to use (nil: one with a 10 s timeout).
	HTTP *http.Client
}

// Set sets the status of commit sha. description is shortened to GitHub's
// 140 characters.
func (c *Client) Set(ctx context.Context, sha string, state State, description string) error {
	if !repoRe.MatchString(c.Repository) {
		return fmt.Errorf("commit status: repository %q is not owner/name", c.Repository)
	}
	if !shaRe.MatchString(sha) {
		return fmt.Errorf("commit status: %q is not a commit sha", sha)
	}
	if r := []rune(description); len(r) > maxDescription {
		description = string(r[:maxDescription-1]) + "…"
	}
	body, err := json.Marshal(map[string]string{"state": string(state), "description": description, "context": c.Context})
	if err != nil {
		return err
	}
	endpoint := strings.TrimSuffix(c.APIURL, "/") + "/repos/" + c.Repository + "/statuses/" + sha
	if _, err := url.Parse(endpoint); err != nil {
		return fmt.Errorf("commit status: bad api url")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("commit status: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	req.Header.Set("Content-Type", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("commit status %s on %s: %w", state, sha[:12], redact(err, c.Token))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("commit status %s on %s: %s: %s", state, sha[:12], resp.Status, strings.ReplaceAll(strings.TrimSpace(string(msg)), c.Token, "***"))
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

func redact(err error, token string) error {
	if token == "" || !strings.Contains(err.Error(), token) {
		return err
	}
	return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), token, "***"))
}
