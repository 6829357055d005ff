#!/bin/sh
# perl: text processing, file I/O, fork/wait, a pipe, sockets over loopback.
set -eu
perl -e '
use strict; use warnings; use IO::Socket::INET; use POSIX ":sys_wait_h";
my %h; $h{$_ % 7}++ for 1..1000; die "hash" unless $h{0} == 142;
open(my $f, ">", "/tmp/p.txt") or die "open: $!"; print $f "line $_\n" for 1..100; close $f;
open($f, "<", "/tmp/p.txt") or die; my $n = grep { /^line \d+$/ } <$f>; die "lines" unless $n == 100;
my $srv = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 5, ReuseAddr => 1) or die "listen: $!";
my $port = $srv->sockport;
my $pid = fork(); die "fork: $!" unless defined $pid;
if ($pid == 0) { my $c = IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => $port) or exit 2; print $c "ping\n"; exit 0; }
my $conn = $srv->accept or die "accept: $!"; my $l = <$conn>; die "got $l" unless $l eq "ping\n";
waitpid($pid, 0); die "child $?" if $?;
my $out = `echo backtick`; die "bt" unless $out eq "backtick\n";
print "perl $] ok\n";
'
echo OK
