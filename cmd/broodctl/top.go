package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"golang.org/x/term"

	"github.com/broodhq/brood/internal/control"
)

// topOptions are broodctl top's settings, from the flags.
type topOptions struct {
	path     string        // the control socket
	interval time.Duration // between two looks
	timeout  time.Duration // for one answer
}

// runTop is broodctl top: full screen on a terminal, a table printed every
// interval otherwise. It returns the exit code.
func runTop(ctx context.Context, o topOptions, stdout, stderr io.Writer) int {
	poll := func(ctx context.Context) (*control.Status, error) {
		ctx, cancel := context.WithTimeout(ctx, o.timeout)
		defer cancel()
		return fetchStatus(ctx, o.path)
	}
	var err error
	if isTerminal(stdout) {
		err = topScreen(ctx, o, poll, stdout)
	} else {
		ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
		err = topPlain(ctx, o, poll, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "broodctl top: %v\n", err)
		return 1
	}
	return 0
}

// fetchStatus asks for a status, and says what it means when there is
// none: a master gone, or one that stopped answering.
func fetchStatus(ctx context.Context, path string) (*control.Status, error) {
	resp, err := control.Do(ctx, path, control.Request{Cmd: control.CmdStatus})
	switch {
	case errors.Is(err, control.ErrNotRunning):
		return nil, fmt.Errorf("the master went away: %w", err)
	case errors.Is(err, context.DeadlineExceeded):
		return nil, fmt.Errorf("the master stopped answering: %w", err)
	case err != nil:
		return nil, fmt.Errorf("lost the master: %w", err)
	case !resp.OK && strings.HasPrefix(resp.Error, "the master did not"):
		// Its socket answers, its loop does not (internal/master).
		return nil, fmt.Errorf("the master stopped answering: %w", resp.Err())
	case !resp.OK:
		return nil, fmt.Errorf("the master refused status: %w", resp.Err())
	case resp.Status == nil:
		return nil, errors.New("the master answered without a status")
	}
	return resp.Status, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd())) && term.IsTerminal(int(os.Stdin.Fd())) &&
		os.Getenv("TERM") != "dumb"
}

// topPlain prints the view every interval until ctx ends (nil) or the
// master is lost.
func topPlain(ctx context.Context, o topOptions, poll func(context.Context) (*control.Status, error), w io.Writer) error {
	t := newTracker()
	for {
		st, err := poll(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		now := time.Now()
		t.observe(st, now)
		fmt.Fprintf(w, "--- %s\n%s\n\n", now.Format("15:04:05"), strings.Join(t.screen(0, plain), "\n"))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(o.interval):
		}
	}
}

// topScreen runs the full-screen view until q, Ctrl-C or a lost master.
func topScreen(ctx context.Context, o topOptions, poll func(context.Context) (*control.Status, error), w io.Writer) error {
	m := &topModel{ctx: ctx, poll: poll, interval: o.interval, t: newTracker(), path: o.path}
	p := tea.NewProgram(m, tea.WithAltScreen(), tea.WithContext(ctx), tea.WithOutput(w))
	final, err := p.Run()
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("terminal: %w", err)
	}
	return final.(*topModel).err
}

// topModel is the bubbletea model: the tracker, fed by one poll at a time
// (the next is asked for an interval after the last answer, so a slow
// master is never asked twice at once).
type topModel struct {
	ctx      context.Context
	poll     func(context.Context) (*control.Status, error)
	interval time.Duration
	path     string
	t        *tracker
	width    int
	height   int
	err      error // why it quit, nil for q
}

type (
	statusMsg struct {
		st *control.Status
		at time.Time
	}
	lostMsg struct{ err error }
	tickMsg struct{}
)

func (m *topModel) fetch() tea.Msg {
	st, err := m.poll(m.ctx)
	if err != nil {
		return lostMsg{err}
	}
	return statusMsg{st, time.Now()}
}

func (m *topModel) Init() tea.Cmd { return m.fetch }

func (m *topModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		switch msg.String() {
		case "q", "ctrl+c", "esc":
			return m, tea.Quit
		}
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case statusMsg:
		m.t.observe(msg.st, msg.at)
		return m, tea.Tick(m.interval, func(time.Time) tea.Msg { return tickMsg{} })
	case tickMsg:
		return m, m.fetch
	case lostMsg:
		m.err = msg.err
		return m, tea.Quit
	}
	return m, nil
}

var (
	titleStyle    = lipgloss.NewStyle().Bold(true)
	headStyle     = lipgloss.NewStyle().Bold(true).Underline(true)
	startingStyle = lipgloss.NewStyle().Foreground(lipgloss.Color("2"))
	drainingStyle = lipgloss.NewStyle().Foreground(lipgloss.Color("3"))
	exitedStyle   = lipgloss.NewStyle().Foreground(lipgloss.Color("1")).Faint(true)
	helpStyle     = lipgloss.NewStyle().Faint(true)
)

func styled(kind, s string) string {
	switch kind {
	case "title":
		return titleStyle.Render(s)
	case "head":
		return headStyle.Render(s)
	case "starting":
		return startingStyle.Render(s)
	case "draining":
		return drainingStyle.Render(s)
	case "exited":
		return exitedStyle.Render(s)
	}
	return s
}

// View is the screen at the terminal's width and height, which bubbletea tells the
// model at start and again on every resize (SIGWINCH).
func (m *topModel) View() string {
	if m.t.st == nil {
		return "broodctl top: asking " + m.path + " ...\n"
	}
	lines := m.t.screen(m.width, styled)
	help := fitLine([]string{"q quits", "refreshes every " + m.interval.String(), "↑ starting  ↓ draining  ✗ exited"},
		" · ", m.width, []int{0, 2, 1})
	lines = append(lines, "", helpStyle.Render(help))
	return strings.Join(fitHeight(lines, m.height), "\n") + "\n"
}

// fitHeight keeps the first lines of a view that fit in a terminal height
// lines high (0: unknown, all), the last of them saying how many are left
// out. bubbletea, given more, keeps the bottom ones, and the headline and
// the table's header went first; the view's closing newline takes a line.
func fitHeight(lines []string, height int) []string {
	room := height - 1
	if height <= 0 || len(lines) <= room {
		return lines
	}
	if room <= 1 {
		return lines[:1]
	}
	more := len(lines) - (room - 1)
	return append(lines[:room-1:room-1], helpStyle.Render(fmt.Sprintf("… %d more lines: a taller terminal shows them", more)))
}
