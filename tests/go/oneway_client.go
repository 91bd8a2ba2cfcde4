// oneway_client, in Go: the seed's own demo client. It connects, writes a short numbered message
// every PAUSE_MS, never reads, and on a write error reconnects and writes the message again. Go's
// net package makes its system calls itself, and built with CGO_ENABLED=0 the binary is static:
// LD_PRELOAD cannot reach it. Standard library only (tests build it without network access).
//
//	oneway_client PORT COUNT PAUSE_MS
//
// Prints "sent msg N" per message and "sent COUNT messages, F writes failed and were resent".
package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

func dial(port string) net.Conn {
	conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		fmt.Fprintf(os.Stderr, "oneway_client: connect: %v\n", err)
		os.Exit(1)
	}
	return conn
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: oneway_client PORT COUNT PAUSE_MS")
		os.Exit(2)
	}
	port := os.Args[1]
	count, err1 := strconv.Atoi(os.Args[2])
	pause, err2 := strconv.Atoi(os.Args[3])
	if err1 != nil || err2 != nil {
		fmt.Fprintln(os.Stderr, "usage: oneway_client PORT COUNT PAUSE_MS")
		os.Exit(2)
	}
	conn := dial(port)
	failed := 0
	for i := 1; i <= count; i++ {
		msg := []byte(fmt.Sprintf("msg %d\n", i))
		time.Sleep(time.Duration(pause) * time.Millisecond)
		for {
			if _, err := conn.Write(msg); err == nil {
				break
			} else {
				fmt.Printf("write of msg %d failed (%v): reconnecting and sending it again\n", i, err)
			}
			failed++
			conn.Close()
			conn = dial(port)
		}
		fmt.Printf("sent msg %d\n", i)
	}
	fmt.Printf("sent %d messages, %d writes failed and were resent\n", count, failed)
	conn.Close()
}
