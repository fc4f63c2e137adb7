module kontain.test/gotest

go 1.19
