// Package proc holds the operating-system specific parts of running brood's
// processes: tying a child's life to its master, naming processes for ps,
// counting the CPUs a process may use, and reading a process's memory.
// Linux gets the full set; elsewhere the functions degrade and say so.
package proc
