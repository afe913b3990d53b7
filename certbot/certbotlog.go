package certbot

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// maxLogRead bounds how much of the end of certbot's log is read.
const maxLogRead = 256 << 10

// maxLogDetail bounds the text logDetail returns.
const maxLogDetail = 1 << 10

// logRecordRE matches the first line of a record of certbot's log
// ("2026-11-25 11:57:04,581:DEBUG:acme.client:...").
var logRecordRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d+:`)

// logDetail returns the ACME problem and the Retry-After header of the last
// error response found in certbot's log, if the log was written since
// start; "" when there is none, no LogsDir, or the log cannot be read (it
// belongs to root when certbot runs through sudo).
//
// Certbot rotates its log at every start, so letsencrypt.log is the log of
// the run that just ended, as long as nothing else runs certbot with the
// same LogsDir meanwhile.
func (c *Certbot) logDetail(start time.Time) string {
	if c.LogsDir == "" {
		return ""
	}
	f, err := os.Open(filepath.Join(c.LogsDir, "letsencrypt.log"))
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.ModTime().Before(start.Add(-time.Second)) {
		return ""
	}
	if st.Size() > maxLogRead {
		if _, err := f.Seek(-maxLogRead, io.SeekEnd); err != nil {
			return ""
		}
	}
	b, err := io.ReadAll(io.LimitReader(f, maxLogRead))
	if err != nil {
		return ""
	}
	return parseLogDetail(string(b))
}

// parseLogDetail extracts from the text of certbot's log the last ACME
// problem (the "acme.messages.Error: ..." line of a traceback) and the
// Retry-After header of the last 4xx or 5xx response acme.client logged.
// A Retry-After of a successful response (polling) is ignored.
func parseLogDetail(log string) string {
	var problem, retryAfter string
	status := 0
	for line := range strings.SplitSeq(log, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case logRecordRE.MatchString(line):
			status = 0
		case strings.HasPrefix(line, "HTTP "):
			if f := strings.Fields(line); len(f) >= 2 {
				status, _ = strconv.Atoi(f[1])
			}
		case status >= 400 && len(line) > len("retry-after:") && strings.EqualFold(line[:len("retry-after:")], "retry-after:"):
			retryAfter = strings.TrimSpace(line[len("retry-after:"):])
		case strings.HasPrefix(line, "acme.messages.Error: "):
			problem = strings.TrimSpace(strings.TrimPrefix(line, "acme.messages.Error: "))
		}
	}
	detail := problem
	if retryAfter != "" {
		if detail != "" {
			detail += " "
		}
		detail += "(Retry-After: " + retryAfter + ")"
	}
	return shorten(detail, maxLogDetail)
}
