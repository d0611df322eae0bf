// Package memret returns the memory a burst left behind to the operating
// system.
//
// After a burst (slow consumers' buffers, large frames) the Go runtime
// keeps the freed heap for minutes: it collects only when the program
// allocates, and its scavenger returns memory slowly. [Watch] notices when
// the program has gone quiet with much more heap kept than live, and then
// calls debug.FreeOSMemory once. ncserver runs it; a program that embeds
// the server may, since it acts on the whole process.
package memret
