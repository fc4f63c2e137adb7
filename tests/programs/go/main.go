// A Go program with one mode per runtime feature; the tests run it natively and under km.
package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

func goroutines() {
	var wg sync.WaitGroup
	results := make(chan int, 64)
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s := 0
			for j := 0; j < 200000; j++ {
				s += (j * i) % 7
			}
			results <- s
		}(i)
	}
	wg.Wait()
	close(results)
	total := 0
	for v := range results {
		total += v
	}
	// a pipeline of unbuffered channels
	a, b := make(chan int), make(chan int)
	go func() {
		for i := 0; i < 1000; i++ {
			a <- i
		}
		close(a)
	}()
	go func() {
		for v := range a {
			b <- v * 2
		}
		close(b)
	}()
	sum := 0
	for v := range b {
		sum += v
	}
	var mu sync.Mutex
	counter := 0
	var wg2 sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			for j := 0; j < 10000; j++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
		}()
	}
	wg2.Wait()
	fmt.Println("goroutines:", total, "pipeline:", sum, "mutex:", counter)
}

func timers() {
	start := time.Now()
	t := time.NewTicker(5 * time.Millisecond)
	n := 0
	for range t.C {
		n++
		if n == 10 {
			break
		}
	}
	t.Stop()
	timeout := time.After(20 * time.Millisecond)
	done := false
	select {
	case <-timeout:
		done = true
	case <-time.After(5 * time.Second):
	}
	elapsed := time.Since(start)
	fmt.Println("timers: ticks", n, "after", done, "elapsed >= 70ms:", elapsed >= 70*time.Millisecond)
}

func gc() {
	var keep [][]byte
	for i := 0; i < 2000; i++ {
		b := make([]byte, 64*1024)
		b[0] = byte(i)
		if i%50 == 0 {
			keep = append(keep, b)
		}
	}
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	fmt.Println("gc: kept", len(keep), "collections > 0:", m.NumGC > 0, "first byte", keep[3][0])
}

func preempt() {
	// a goroutine in a loop without function calls can only be stopped by an
	// asynchronous preemption signal (SIGURG)
	runtime.GOMAXPROCS(1)
	stop := make(chan bool)
	var x uint64
	go func() {
		for {
			x++
		}
	}()
	go func() {
		time.Sleep(50 * time.Millisecond)
		stop <- true
	}()
	<-stop
	fmt.Println("preempt: the main goroutine ran again:", x > 0)
}

func signals() {
	c := make(chan os.Signal, 2)
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM, syscall.SIGUSR1)
	fmt.Println("ready")
	got := []string{}
	for len(got) < 3 {
		s := <-c
		got = append(got, s.String())
	}
	sort.Strings(got)
	fmt.Println("signals:", strings.Join(got, ","))
}

func selfSignal() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGUSR2)
	syscall.Kill(os.Getpid(), syscall.SIGUSR2)
	select {
	case s := <-c:
		fmt.Println("self signal:", s)
	case <-time.After(5 * time.Second):
		fmt.Println("self signal: timeout")
	}
}

func server() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("listen:", err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	served := 0
	mux := http.NewServeMux()
	done := make(chan bool)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s from go", r.URL.Path[1:])
		served++
		if served == 3 {
			go func() { done <- true }()
		}
	})
	go http.Serve(ln, mux)
	<-done
	time.Sleep(10 * time.Millisecond)
	fmt.Println("served", served)
}

func client(url string) {
	r, err := http.Get(url)
	if err != nil {
		fmt.Println("get:", err)
		os.Exit(1)
	}
	body, _ := io.ReadAll(r.Body)
	fmt.Println("status", r.StatusCode, "body", string(body))
}

func execChildren() {
	out, err := exec.Command("/bin/busybox", "echo", "from a child").Output()
	fmt.Printf("output %q err %v\n", out, err)
	err = exec.Command("/bin/busybox", "false").Run()
	fmt.Println("false:", err)
	err = exec.Command("/nonexistent/program").Run()
	fmt.Println("missing:", err != nil)
	cmd := exec.Command("/bin/busybox", "tr", "a-z", "A-Z")
	cmd.Stdin = strings.NewReader("piped through tr\n")
	out, _ = cmd.Output()
	fmt.Printf("tr: %s", out)
}

func selfExec() {
	if os.Getenv("KT_GO_CHILD") == "1" {
		fmt.Println("the child, args", os.Args[1:])
		os.Exit(4)
	}
	self, _ := os.Executable()
	cmd := exec.Command(self, "self-exec", "again")
	cmd.Env = append(os.Environ(), "KT_GO_CHILD=1")
	out, err := cmd.Output()
	fmt.Printf("child said %q; exit: %v\n", out, err)
}

// notifyStop is Go's os/signal TestAtomicStop: a child stops delivery (signal.Stop)
// while a SIGINT it sent itself is on its way; the child must either get it on its
// channel or die of it, never lose it or hang.  The parent runs the child ten times and
// says whether every run ended one of those two ways.
func notifyStop() {
	if os.Getenv("KT_GO_ATOMIC_STOP") == "1" {
		for i := 0; i < 10; i++ {
			cs := make(chan os.Signal, 1)
			signal.Notify(cs, syscall.SIGINT)
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				signal.Stop(cs)
			}()
			syscall.Kill(syscall.Getpid(), syscall.SIGINT)
			select {
			case <-cs:
			case <-time.After(60 * time.Second):
				fmt.Println("lost signal on try", i)
			}
			wg.Wait()
		}
		os.Exit(0)
	}
	// SIGINT caught here, so that the child does not start with it ignored
	cs := make(chan os.Signal, 1)
	signal.Notify(cs, syscall.SIGINT)
	defer signal.Stop(cs)
	self, _ := os.Executable()
	good := 0
	for i := 0; i < 10; i++ {
		cmd := exec.Command(self, "notify-stop")
		cmd.Env = append(os.Environ(), "KT_GO_ATOMIC_STOP=1")
		out, err := cmd.CombinedOutput()
		if err == nil && len(out) == 0 {
			good++
		} else if ee, ok := err.(*exec.ExitError); ok {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGINT {
				good++
			}
		}
		if good != i+1 {
			fmt.Printf("run %d: %v %q\n", i, err, out)
		}
	}
	fmt.Println("notify-stop: runs that got the signal or died of it:", good)
}

// A command run as another user with a parent-death signal (Go's SysProcAttr{Pdeathsig,
// Credential}, as Go's own TestDeathSignalSetuid does it): it starts, and gets the signal
// when its parent dies.  Run as root.
func pdeathsigCredential() {
	cmd := exec.Command("/bin/busybox", "id", "-u")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL,
		Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.Output()
	fmt.Printf("id -u as nobody with a parent-death signal: %q %v\n", out, err)
	dir, err := os.MkdirTemp("", "kt-pdeathsig")
	if err != nil {
		fmt.Println("tempdir:", err)
		return
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0755)
	self, _ := os.Executable()
	copyPath := dir + "/gotest"
	if data, err := os.ReadFile(self); err != nil || os.WriteFile(copyPath, data, 0755) != nil {
		fmt.Println("copy:", err)
		return
	}
	parent := exec.Command(copyPath, "pdeathsig-parent")
	stdin, _ := parent.StdinPipe()
	stdout, _ := parent.StdoutPipe()
	parent.Stderr = os.Stderr
	if err := parent.Start(); err != nil {
		fmt.Println("start:", err)
		return
	}
	r := bufio.NewReader(stdout)
	line, _ := r.ReadString('\n')
	fmt.Printf("the child says %q\n", line)
	if line == "start\n" {
		parent.Process.Signal(syscall.SIGTERM)
		line, _ = r.ReadString('\n')
		fmt.Printf("after its parent died it says %q\n", line)
	}
	stdin.Close()
	parent.Wait()
}

func pdeathsigParent() {
	cmd := exec.Command(os.Args[0], "pdeathsig-child")
	cmd.Stdin = os.Stdin
	cmd.Stdout = os.Stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGUSR1,
		Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if err := cmd.Start(); err != nil {
		fmt.Println("start as nobody:", err)
		os.Exit(1)
	}
	cmd.Wait()
}

func pdeathsigChild() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGUSR1)
	go func() {
		<-c
		fmt.Println("ok")
		os.Exit(0)
	}()
	fmt.Println("start")
	buf := make([]byte, 32)
	os.Stdin.Read(buf)
	fmt.Println("not ok")
	os.Exit(1)
}

func main() {
	switch os.Args[1] {
	case "pdeathsig-credential":
		pdeathsigCredential()
	case "pdeathsig-parent":
		pdeathsigParent()
	case "pdeathsig-child":
		pdeathsigChild()
	case "hello":
		fmt.Println("hello from go")
	case "exec":
		execChildren()
	case "self-exec":
		selfExec()
	case "goroutines":
		goroutines()
	case "timers":
		timers()
	case "gc":
		gc()
	case "preempt":
		preempt()
	case "signals":
		signals()
	case "self-signal":
		selfSignal()
	case "notify-stop":
		notifyStop()
	case "server":
		server()
	case "client":
		client(os.Args[2])
	case "panic":
		var m map[string]int
		m["x"] = 1
	case "nil":
		var p *int
		fmt.Println(*p)
	case "exit":
		os.Exit(3)
	}
}
