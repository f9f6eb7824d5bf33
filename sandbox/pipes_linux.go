// The worker's side of a run's pipes (config, status, stdout, stderr)
// and the capped capture of the program's output.

package sandbox

import "os"

// pipes are the parent's and the child's ends of the run's pipes.
type pipes struct {
	configR, configW *os.File
	statusR, statusW *os.File
	stdoutR, stdoutW *os.File
	stderrR, stderrW *os.File
}

func newPipes() (*pipes, error) {
	p := &pipes{}
	for _, pair := range []struct{ r, w **os.File }{
		{&p.configR, &p.configW},
		{&p.statusR, &p.statusW},
		{&p.stdoutR, &p.stdoutW},
		{&p.stderrR, &p.stderrW},
	} {
		r, w, err := os.Pipe()
		if err != nil {
			p.closeAll()
			return nil, err
		}
		*pair.r, *pair.w = r, w
	}
	return p, nil
}

// closeChildEnds closes the parent's copies of the ends the child uses.
func (p *pipes) closeChildEnds() {
	closeFiles(p.configR, p.statusW, p.stdoutW, p.stderrW)
}

func (p *pipes) closeAll() {
	closeFiles(p.configR, p.configW, p.statusR, p.statusW, p.stdoutR, p.stdoutW, p.stderrR, p.stderrW)
}

func closeFiles(files ...*os.File) {
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}

// capture keeps the first max bytes of a stream and counts the rest.
type capture struct {
	max   int
	buf   []byte
	total int64
	done  chan struct{}
}

func newCapture(max int) *capture {
	return &capture{max: max, done: make(chan struct{})}
}

// drain reads f to EOF (or until its read deadline), keeping at most max bytes.
func (c *capture) drain(f *os.File) {
	defer close(c.done)
	chunk := make([]byte, 32<<10)
	for {
		n, err := f.Read(chunk)
		if n > 0 {
			c.total += int64(n)
			if room := c.max - len(c.buf); room > 0 {
				c.buf = append(c.buf, chunk[:min(n, room)]...)
			}
		}
		if err != nil {
			return
		}
	}
}

func (c *capture) truncated() bool { return c.total > int64(len(c.buf)) }
