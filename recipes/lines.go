package recipes

import (
	"strconv"
	"strings"
)

// keyLines maps every key path of a TOML document to the line it is written
// on. Paths use the same form as decode errors: components joined by ".",
// with array elements (arrays of tables and inline arrays) as their index,
// e.g. "types.default.processes.0.command". BurntSushi/toml keeps key
// positions private, so this small scanner reads the source once more. It
// never fails: on input it does not understand it skips to the next line.
func keyLines(src string) map[string]int {
	s := &lineScanner{src: src, line: 1, lines: map[string]int{}, aot: map[string]int{}}
	s.run()
	return s.lines
}

type lineScanner struct {
	src   string
	i     int
	line  int
	lines map[string]int
	aot   map[string]int // array-of-tables path (resolved) → elements seen
	cur   string         // current table path
}

func (s *lineScanner) eof() bool { return s.i >= len(s.src) }

func (s *lineScanner) peek() byte {
	if s.eof() {
		return 0
	}
	return s.src[s.i]
}

func (s *lineScanner) next() {
	if s.eof() {
		return
	}
	if s.src[s.i] == '\n' {
		s.line++
	}
	s.i++
}

// record notes the line of path and of those of its ancestors not seen
// yet: a header [a.b] or a dotted key a.b = 1 is where a first appears too.
func (s *lineScanner) record(path string) {
	for p := path; p != ""; {
		if _, ok := s.lines[p]; ok {
			return // its ancestors were seen no later
		}
		s.lines[p] = s.line
		i := strings.LastIndexByte(p, '.')
		if i < 0 {
			return
		}
		p = p[:i]
	}
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

// skipSpace skips blanks, and newlines and comments when nl is true.
func (s *lineScanner) skipSpace(nl bool) {
	for !s.eof() {
		switch c := s.peek(); {
		case c == ' ' || c == '\t' || c == '\r':
			s.next()
		case c == '\n' && nl:
			s.next()
		case c == '#' && nl:
			s.skipLine()
		default:
			return
		}
	}
}

func (s *lineScanner) skipLine() {
	for !s.eof() && s.peek() != '\n' {
		s.i++
	}
	s.next()
}

func (s *lineScanner) run() {
	for {
		s.skipSpace(true)
		if s.eof() {
			return
		}
		start := s.i
		if s.peek() == '[' {
			s.header()
		} else {
			key, ok := s.key('=')
			if ok {
				p := join(s.cur, key)
				s.record(p)
				s.value(p, 0)
			}
		}
		s.skipSpace(false)
		if s.peek() == '#' || s.i == start || (!s.eof() && s.peek() != '\n') {
			s.skipLine()
		}
	}
}

// resolve turns header components into a path where each array of tables is
// followed by the index of its last element.
func (s *lineScanner) resolve(comps []string) string {
	p := ""
	for _, c := range comps {
		p = join(p, c)
		if n, ok := s.aot[p]; ok && n > 0 {
			p = join(p, strconv.Itoa(n-1))
		}
	}
	return p
}

func (s *lineScanner) header() {
	s.next()
	arr := s.peek() == '['
	if arr {
		s.next()
	}
	key, ok := s.key(']')
	if !ok {
		return
	}
	if arr && s.peek() == ']' {
		s.next()
	}
	comps := splitKey(key)
	if len(comps) == 0 {
		return
	}
	if !arr {
		s.cur = s.resolve(comps)
		s.record(s.cur)
		return
	}
	base := join(s.resolve(comps[:len(comps)-1]), comps[len(comps)-1])
	n := s.aot[base]
	s.aot[base] = n + 1
	s.record(base)
	s.cur = join(base, strconv.Itoa(n))
	s.record(s.cur)
}

// key reads a (possibly dotted, possibly quoted) key up to end, consuming
// end. It fails at a newline or end of input.
func (s *lineScanner) key(end byte) (string, bool) {
	var b strings.Builder
	for !s.eof() {
		c := s.peek()
		switch {
		case c == end:
			s.next()
			return strings.TrimSpace(b.String()), true
		case c == '\n':
			return "", false
		case c == '"' || c == '\'':
			start := s.i
			s.str()
			b.WriteString(s.src[start:s.i])
		default:
			b.WriteByte(c)
			s.next()
		}
	}
	return "", false
}

// splitKey splits a dotted key, unquoting quoted parts.
func splitKey(k string) []string {
	var out []string
	var b strings.Builder
	quote := byte(0)
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else if c == '\\' && quote == '"' && i+1 < len(k) {
				i++
				b.WriteByte(k[i])
			} else {
				b.WriteByte(c)
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '.':
			out = append(out, strings.TrimSpace(b.String()))
			b.Reset()
		case c == ' ' || c == '\t':
		default:
			b.WriteByte(c)
		}
	}
	return append(out, strings.TrimSpace(b.String()))
}

// str skips a string of any of TOML's four kinds.
func (s *lineScanner) str() {
	q := s.peek()
	if strings.HasPrefix(s.src[s.i:], strings.Repeat(string(q), 3)) {
		s.i += 3
		for !s.eof() {
			if q == '"' && s.peek() == '\\' {
				s.next()
				s.next()
				continue
			}
			if strings.HasPrefix(s.src[s.i:], strings.Repeat(string(q), 3)) {
				s.i += 3
				for !s.eof() && s.peek() == q { // up to two quotes may end the content
					s.i++
				}
				return
			}
			s.next()
		}
		return
	}
	s.next()
	for !s.eof() {
		c := s.peek()
		if c == '\n' {
			return
		}
		s.next()
		if c == '\\' && q == '"' {
			s.next()
			continue
		}
		if c == q {
			return
		}
	}
}

// value skips one value, recording the paths of keys in inline tables and
// elements of arrays.
func (s *lineScanner) value(path string, depth int) {
	s.skipSpace(false)
	if depth > 64 {
		return
	}
	switch s.peek() {
	case '"', '\'':
		s.str()
	case '{':
		s.next()
		for !s.eof() {
			s.skipSpace(true)
			if s.peek() == '}' {
				s.next()
				return
			}
			key, ok := s.key('=')
			if !ok {
				return
			}
			p := join(path, strings.Join(splitKey(key), "."))
			s.record(p)
			s.value(p, depth+1)
			s.skipSpace(true)
			if s.peek() == ',' {
				s.next()
			} else if s.peek() != '}' {
				return
			}
		}
	case '[':
		s.next()
		for idx := 0; !s.eof(); idx++ {
			s.skipSpace(true)
			if s.peek() == ']' {
				s.next()
				return
			}
			p := join(path, strconv.Itoa(idx))
			s.record(p)
			start := s.i
			s.value(p, depth+1)
			s.skipSpace(true)
			if s.peek() == ',' {
				s.next()
			} else if s.peek() != ']' || s.i == start {
				return
			}
		}
	default:
		for !s.eof() {
			switch s.peek() {
			case ',', ']', '}', '\n', '#':
				return
			}
			s.next()
		}
	}
}

// lineOf returns the line of path, or of its closest ancestor written in the
// file, or 1.
func lineOf(lines map[string]int, path string) int {
	for p := path; p != ""; {
		if l, ok := lines[p]; ok {
			return l
		}
		i := strings.LastIndexByte(p, '.')
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 1
}
