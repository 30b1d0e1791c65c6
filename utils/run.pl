#!/usr/bin/env perl
# run.pl: run a command, or an array of jobs, on the local machine (Kaldi's interface).
#
#   run.pl [options] [JOB=1:N] <log-file> <command...>
#
# Each job runs "bash -c <command>" with stdout and stderr appended to its log file
# (the log directory is created). The literal string JOB (or whatever variable name the
# job range uses, e.g. SPLIT=1:4) is replaced by the job index in the log file name and
# in the command. With one command word, that word is the whole shell command line, so
#   run.pl JOB=1:4 exp/log/x.JOB.log 'python -m foo --part JOB | gzip -c > out.JOB.gz'
# works; with several words they are joined by spaces and words that contain whitespace
# are quoted (as in Kaldi), so escaped shell operators (\| \>) keep their meaning and
# "ark:gunzip -c f.gz |" stays one argument.
#
# Options:
#   --max-jobs-run N   run at most N jobs at once (default: all at once)
#   --gpu N, --mem X, --num-threads N, --config F, -tc N
#                      accepted so that cmd.sh can pass them (queue.pl/slurm.pl
#                      options); --gpu, --mem and --num-threads are recorded in the log
#                      ("# Resources: ..."), -tc is a synonym of --max-jobs-run
#
# Each log file starts with "# <command>" and "# Started at <date>", and ends with
# "# Accounting: time=<secs> threads=<n>" and "# Ended (code <rc>) at <date>, elapsed
# time <secs> seconds".
# Exit status: 0 if every job succeeded; otherwise "run.pl: <k> / <N> failed, log is in
# <log-file with JOB replaced by *>" is printed to stderr and the exit status is 1.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Path qw(make_path);
use POSIX qw(strftime WIFEXITED WEXITSTATUS WIFSIGNALED WTERMSIG);

my $usage = "Usage: run.pl [options] [JOB=1:N] <log-file> <command...>\n"
  . "e.g.:  run.pl --max-jobs-run 4 JOB=1:8 exp/log/enhance.JOB.log "
  . "python -m sekd.bin.enhance --part JOB\n"
  . "Options: --max-jobs-run N (default: all jobs at once); --gpu, --mem, "
  . "--num-threads, --config are accepted and ignored.\n";

sub fail { print STDERR @_; exit 1; }

my $max_jobs_run = -1;
my $num_threads  = 1;
my $jobname;
my ($jobstart, $jobend) = (1, 1);
my @resources;  # --gpu/--mem/--num-threads as given: recorded in each log header

my %takes_value = map { $_ => 1 } qw(--max-jobs-run -tc --gpu --mem --num-threads --config);

while (@ARGV) {
  my $arg = $ARGV[0];
  if ($arg =~ m/^(--?[A-Za-z][\w-]*)(?:=(.*))?$/s && $takes_value{$1}) {
    my $opt = $1;
    my $value = $2;
    shift @ARGV;
    if (!defined $value) {
      @ARGV or fail("run.pl: option $opt requires a value\n");
      $value = shift @ARGV;
    }
    if ($opt eq '--max-jobs-run' || $opt eq '-tc') {
      $value =~ m/^\d+$/ && $value > 0
        or fail("run.pl: $opt expects a positive integer, got '$value'\n");
      $max_jobs_run = $value;
    } elsif ($opt eq '--num-threads') {
      $value =~ m/^\d+$/ && $value > 0
        or fail("run.pl: --num-threads expects a positive integer, got '$value'\n");
      $num_threads = $value;
    }
    # --gpu, --mem, --config: nothing to do on the local machine beyond recording them.
    push @resources, "$opt $value" if $opt eq '--gpu' || $opt eq '--mem' || $opt eq '--num-threads';
  } elsif ($arg =~ m/^-/) {
    fail("run.pl: unknown option $arg\n$usage");
  } elsif ($arg =~ m/^([A-Za-z_]\w*)=(\d+):(\d+)$/) {
    defined $jobname and fail("run.pl: more than one job range given ($jobname and $1)\n");
    ($jobname, $jobstart, $jobend) = ($1, $2, $3);
    $jobstart <= $jobend
      or fail("run.pl: invalid job range $arg (start > end)\n");
    shift @ARGV;
  } elsif ($arg =~ m/^([A-Za-z_]\w*)=(\d+)$/) {
    defined $jobname and fail("run.pl: more than one job range given ($jobname and $1)\n");
    ($jobname, $jobstart, $jobend) = ($1, $2, $2);
    shift @ARGV;
  } else {
    last;
  }
}

@ARGV >= 2 or fail($usage);
my $logfile = shift @ARGV;
my @words = @ARGV;

if (defined $jobname && $jobend > $jobstart && index($logfile, $jobname) < 0) {
  fail("run.pl: you are running $jobname=$jobstart:$jobend but the log file "
    . "'$logfile' does not contain $jobname, so every job would write the same log\n");
}

# Build the shell command line for job $j.
sub command_for_job {
  my ($j) = @_;
  my @w = @words;
  if (defined $jobname) {
    s/\Q$jobname\E/$j/g for @w;
  }
  return $w[0] if @w == 1;
  my @quoted;
  for my $x (@w) {
    if ($x =~ m/^\S+$/) {
      push @quoted, $x;                    # no whitespace: as-is
    } elsif ($x !~ m/"/) {
      push @quoted, "\"$x\"";              # whitespace, no double quote
    } else {
      (my $y = $x) =~ s/'/'\\''/g;         # contains a double quote: single-quote it
      push @quoted, "'$y'";
    }
  }
  return join(' ', @quoted);
}

sub log_for_job {
  my ($j) = @_;
  my $l = $logfile;
  $l =~ s/\Q$jobname\E/$j/g if defined $jobname;
  return $l;
}

sub now { return strftime('%a %b %e %H:%M:%S %Z %Y', localtime); }

# Runs in the child process: write the header, run the command, write the footer.
sub run_job {
  my ($j) = @_;
  my $log = log_for_job($j);
  my $cmd = command_for_job($j);
  open(my $fh, '>', $log) or do {
    print STDERR "run.pl: cannot write log file $log: $!\n";
    return 1;
  };
  print $fh "# $cmd\n# Started at " . now() . "\n";
  print $fh "# Resources: @resources\n" if @resources;
  close($fh);

  my $start = time();
  my $pid = fork();
  defined $pid or do { print STDERR "run.pl: fork failed: $!\n"; return 1; };
  if ($pid == 0) {
    open(STDOUT, '>>', $log) or die "run.pl: cannot append to $log: $!\n";
    open(STDERR, '>&', \*STDOUT) or die "run.pl: cannot redirect stderr: $!\n";
    exec('bash', '-c', $cmd) or do { print STDERR "run.pl: cannot run bash: $!\n"; POSIX::_exit(127); };
  }
  waitpid($pid, 0);
  my $status = $?;
  my $rc = WIFEXITED($status) ? WEXITSTATUS($status)
         : WIFSIGNALED($status) ? 128 + WTERMSIG($status) : 1;
  my $elapsed = time() - $start;

  open($fh, '+<', $log) or do {
    print STDERR "run.pl: cannot append to log file $log: $!\n";
    return 1;
  };
  # Start the footer on a line of its own even if the output lacked a final newline.
  my $last = '';
  seek($fh, -1, 2) and read($fh, $last, 1);
  seek($fh, 0, 2);
  print $fh "\n" if $last ne "\n";
  print $fh "# Accounting: time=$elapsed threads=$num_threads\n";
  print $fh "# Ended (code $rc) at " . now() . ", elapsed time $elapsed seconds\n";
  close($fh);
  return $rc == 0 ? 0 : 1;
}

my %running;    # pid -> job index
my $num_failed = 0;
my $num_jobs = $jobend - $jobstart + 1;

sub reap_one {
  my $pid = wait();
  return if $pid < 0;
  if (exists $running{$pid}) {
    $num_failed++ if $? != 0;
    delete $running{$pid};
  }
}

# Create the log directories here, not in the (concurrent) children.
for my $j ($jobstart .. $jobend) {
  my $dir = dirname(log_for_job($j));
  next if -d $dir;
  eval { make_path($dir); 1 } or fail("run.pl: cannot create log directory $dir: $@");
}

for my $j ($jobstart .. $jobend) {
  reap_one() while $max_jobs_run > 0 && scalar(keys %running) >= $max_jobs_run;
  my $pid = fork();
  defined $pid or fail("run.pl: fork failed: $!\n");
  if ($pid == 0) {
    POSIX::_exit(run_job($j));
  }
  $running{$pid} = $j;
}
reap_one() while %running;

if ($num_failed > 0) {
  my $shown = $logfile;
  $shown =~ s/\Q$jobname\E/*/g if defined $jobname;
  print STDERR "run.pl: $num_failed / $num_jobs failed, log is in $shown\n";
  exit 1;
}
exit 0;
