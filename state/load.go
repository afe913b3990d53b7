package state

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// maxFileSize bounds every file Load reads: the desired-state file, raw
// files and snippets.
const maxFileSize = 4 << 20

// snippetsDir is the repository directory whose files are synced as
// snippets.
const snippetsDir = "snippets"

// Load reads the desired-state file named file (a slash-separated path such
// as "sites.yaml") from repo, together with every raw file it references and
// the snippets/ directory, validates all of it, applies the defaults and
// the host filter f, and returns the resolved model.
//
// repo should be the FS of an *os.Root (see LoadFile) so that symbolic
// links cannot lead outside the repository; in addition Load refuses
// symbolic links for every file it reads, checked with fs.Lstat when repo
// implements fs.ReadLinkFS.
//
// Every problem found is reported; the returned error is then an Errors
// value, sorted by file and line, and the *Desired is nil. Validation covers
// all sites, including disabled and filtered-out ones.
func Load(repo fs.FS, file string, f Filter) (*Desired, error) {
	return load(repo, file, f, nil)
}

// load is Load, reusing and refilling cache when it is not nil.
func load(repo fs.FS, file string, f Filter, cache *RawCache) (*Desired, error) {
	l := &loader{fsys: repo, file: file, errs: &errList{file: file}, dirs: map[string]bool{}}
	if cache != nil {
		l.cache, l.now, l.kept = cache, time.Now(), map[string]rawEntry{}
		defer func() { cache.files = l.kept }()
	}
	l.errs.list = append(l.errs.list, f.problems()...)
	d := &Desired{File: file, Snippets: l.snippets()}
	if !fs.ValidPath(file) || file == "." {
		l.errs.add(0, "not a valid path inside the repository")
	} else if data, msg := l.readFile(file); msg != "" {
		l.errs.add(0, "%s", msg)
	} else {
		p := &parser{errs: l.errs}
		if spec, ok := p.parseFile(data); ok {
			l.resolve(spec, f, d)
		}
	}
	if errs := l.errs.sorted(); errs != nil {
		return nil, errs
	}
	return d, nil
}

// LoadFile loads the desired-state file at path, using its directory as
// the repository root: it opens the directory with os.OpenRoot and calls
// Load with the file's base name. It is meant for "sitesync validate
// path/to/sites.yaml". File names in the returned errors are relative to
// the current directory (path's directory joined with the
// repository-relative name), so an editor can jump to them; Desired.File
// stays the base name.
func LoadFile(path string, f Filter) (*Desired, error) {
	dir, base := filepath.Dir(path), filepath.Base(path)
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("cannot open repository directory: %v", unwrapPath(err))}}
	}
	defer root.Close()
	d, err := Load(root.FS(), base, f)
	var errs Errors
	if errors.As(err, &errs) && dir != "." {
		out := make(Errors, len(errs))
		for i, e := range errs {
			c := *e
			if c.File != "" {
				c.File = filepath.Join(dir, filepath.FromSlash(c.File))
			}
			out[i] = &c
		}
		return nil, out
	}
	return d, err
}

// loader holds the state of one Load call.
type loader struct {
	fsys fs.FS
	file string
	errs *errList
	// dirs holds the directories (slash-separated paths) already found by
	// lstat to be real directories, not symbolic links, in this Load.
	dirs map[string]bool
	// cache, when not nil, holds the raw files of the previous Load; kept
	// collects those of this one, which were read no earlier than now.
	cache *RawCache
	now   time.Time
	kept  map[string]rawEntry
}

// resolve validates the parsed file and fills d.
func (l *loader) resolve(spec fileSpec, f Filter, d *Desired) {
	def := l.resolveDefaults(spec.defaults)
	siteLines := map[string]int{}
	type owner struct {
		site string
		line int
	}
	owners := map[string]owner{}
	for _, s := range spec.sites {
		if s.bad {
			continue // already reported: not a mapping
		}
		r := l.resolveSite(s, def)
		name := r.site.Name
		if s.name.set && !s.name.bad {
			if line, dup := siteLines[name]; dup {
				l.errs.add(s.name.line, "duplicate site name %q (first at line %d)", name, line)
			} else {
				siteLines[name] = s.name.line
			}
		}
		for i, n := range r.site.ServerNames {
			line := r.nameLines[i]
			if o, dup := owners[n]; dup {
				l.errs.add(line, "server name %q is also used by site %q (line %d)", n, o.site, o.line)
				continue
			}
			owners[n] = owner{site: name, line: line}
		}
		switch {
		case !f.Match(name):
			d.Skipped = append(d.Skipped, SkippedSite{Name: name, Reason: "filtered"})
		case !r.enabled:
			d.Skipped = append(d.Skipped, SkippedSite{Name: name, Reason: "disabled"})
		default:
			d.Sites = append(d.Sites, r.site)
		}
	}
}

// loadRaw reads and checks a raw site's file and takes the site's server
// names from it.
func (l *loader) loadRaw(r *resolvedSite, raw str) {
	p := raw.v
	if msg := checkRawPath(p); msg != "" {
		l.errs.add(raw.line, "%s", msg)
		return
	}
	r.site.RawPath = p
	e, msg := l.rawFile(p)
	if msg != "" {
		l.errs.add(raw.line, "raw file %q %s", p, msg)
		return
	}
	r.site.Raw = e.data
	names, other, err := e.names, e.other, e.err
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			l.errs.addIn(p, e.Line, "%s", e.Msg)
		} else {
			l.errs.addIn(p, 0, "%v", err)
		}
		l.errs.add(raw.line, "raw file %q is not valid nginx syntax", p)
		return
	}
	tls := r.site.TLS != TLSNone
	for _, n := range other {
		if tls && n != "" && n != "_" {
			l.errs.add(raw.line, "raw file %q: server name %q cannot get a certificate; wildcards and regular expressions need tls: none", p, n)
		}
	}
	for _, n := range names {
		if msg := checkServerName(n, r.site.TLS); msg != "" {
			l.errs.add(raw.line, "raw file %q: %s", p, msg)
			continue
		}
		r.site.ServerNames = append(r.site.ServerNames, n)
		r.nameLines = append(r.nameLines, raw.line)
	}
	if tls && len(names) == 0 {
		l.errs.add(raw.line, "raw file %q has no server_name to get a certificate for", p)
	}
}

// snippets reads the regular files directly under snippets/. Entries whose
// name starts with "." (such as .gitkeep) are ignored; subdirectories,
// symbolic links, other special files and unsafe names are errors. A
// missing directory means no snippets.
func (l *loader) snippets() map[string][]byte {
	out := map[string][]byte{}
	fi, err := fs.Lstat(l.fsys, snippetsDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return out
	case err != nil:
		l.errs.addIn(snippetsDir, 0, "cannot be read: %v", unwrapPath(err))
		return out
	case fi.Mode()&fs.ModeSymlink != 0:
		l.errs.addIn(snippetsDir, 0, "is a symbolic link; symbolic links are not followed")
		return out
	case !fi.IsDir():
		l.errs.addIn(snippetsDir, 0, "is not a directory")
		return out
	}
	entries, err := fs.ReadDir(l.fsys, snippetsDir)
	if err != nil {
		l.errs.addIn(snippetsDir, 0, "cannot be read: %v", unwrapPath(err))
		return out
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		file := snippetsDir + "/" + name
		if msg := checkSnippetName("snippet file name", name); msg != "" {
			l.errs.addIn(file, 0, "%s", msg)
			continue
		}
		if e.IsDir() {
			l.errs.addIn(file, 0, "is a directory; %s/ must contain only files", snippetsDir)
			continue
		}
		data, msg := l.readFile(file)
		if msg != "" {
			l.errs.addIn(file, 0, "%s", msg)
			continue
		}
		out[name] = data
	}
	return out
}

// readFile reads a regular file of at most maxFileSize bytes at a valid
// io/fs path. It refuses symbolic links, both the file itself and any
// directory on the way. On failure it returns a message phrased to follow
// the file's name ("does not exist", "is a symbolic link; ...").
func (l *loader) readFile(name string) ([]byte, string) {
	if _, msg := l.lstat(name); msg != "" {
		return nil, msg
	}
	return l.read(name)
}

// lstat checks that name is a regular file reached without symbolic links
// and returns its lstat data, or a message saying what is wrong with it.
func (l *loader) lstat(name string) (fs.FileInfo, string) {
	parts := strings.Split(name, "/")
	var fi fs.FileInfo
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		last := i == len(parts)-1
		if !last && l.dirs[p] {
			continue
		}
		var err error
		fi, err = fs.Lstat(l.fsys, p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, "does not exist"
		case err != nil:
			return nil, fmt.Sprintf("cannot be read: %v", unwrapPath(err))
		case fi.Mode()&fs.ModeSymlink != 0 && last:
			return nil, "is a symbolic link; symbolic links are not followed"
		case fi.Mode()&fs.ModeSymlink != 0:
			return nil, fmt.Sprintf("is inside %q, which is a symbolic link; symbolic links are not followed", p)
		case !last && !fi.IsDir():
			return nil, "does not exist"
		case last && fi.IsDir():
			return nil, "is a directory"
		case last && !fi.Mode().IsRegular():
			return nil, "is not a regular file"
		case !last:
			l.dirs[p] = true
		}
	}
	return fi, ""
}

// read reads the file name, which lstat has checked.
func (l *loader) read(name string) ([]byte, string) {
	f, err := l.fsys.Open(name)
	if err != nil {
		return nil, fmt.Sprintf("cannot be read: %v", unwrapPath(err))
	}
	defer f.Close()
	// Check again on the open file, in case it was replaced meanwhile.
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, "is not a regular file"
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Sprintf("cannot be read: %v", unwrapPath(err))
	}
	if len(data) > maxFileSize {
		return nil, fmt.Sprintf("is larger than %d MiB", maxFileSize>>20)
	}
	return data, ""
}

// unwrapPath drops the operation and path of an *fs.PathError, which the
// messages already name.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
