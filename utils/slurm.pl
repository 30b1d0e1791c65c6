#!/usr/bin/env perl
# slurm.pl: run a command, or an array of jobs, on a Slurm cluster (Kaldi's interface).
#
#   slurm.pl [options] [JOB=1:N] <log-file> <command...>
#
# The same call as run.pl (cmd.sh switches between them). The jobs are written to a batch
# script under <log-dir>/q/ and submitted with "sbatch --wait" as one job array
# (--array=1-N, "%M" with --max-jobs-run M), so slurm.pl returns when every job is done;
# JOB in the log file name and the command becomes the array index. Each log file gets the
# command, "# Started at", the job's output and "# Ended (code <rc>) at", as with run.pl.
#
# Options (mapped to sbatch options by the config file, Kaldi's format):
#   --gpu N  --mem X  --num-threads N  --time T  --max-jobs-run N (-tc N)  --config F
# Config (default conf/slurm.conf when present, else the built-in one below):
#   command sbatch --export=PATH          the submit command and its fixed options
#   option gpu=0                          what --gpu 0 adds (nothing)
#   option gpu=* --gres=gpu:$0 -p gpu     what --gpu N adds ($0 = N)
#   default gpu=0                         the value when the option is not given
# Exit status: 0 if every job succeeded; otherwise "slurm.pl: <k> / <N> failed, log is in
# <log-file with JOB replaced by *>" on stderr and status 1.
use strict;
use warnings;
use File::Basename qw(dirname basename);
use File::Path qw(make_path);

my $default_config = <<'EOF';
command sbatch --export=PATH --ntasks-per-node=1
option time=* --time $0
option mem=* --mem-per-cpu $0
option mem=0
option num_threads=* --cpus-per-task $0
option num_threads=1 --cpus-per-task 1
option gpu=0
option gpu=* -p gpu --gres=gpu:$0
default gpu=0
default num_threads=1
EOF

sub fail { print STDERR "slurm.pl: ", @_; exit 1; }

my %opts;
my $max_jobs_run = 0;
my $config = -f "conf/slurm.conf" ? "conf/slurm.conf" : "";
my ($jobname, $jobstart, $jobend) = (undef, 1, 1);
my %names = ("--gpu" => "gpu", "--mem" => "mem", "--num-threads" => "num_threads", "--time" => "time");

while (@ARGV) {
  my $arg = $ARGV[0];
  if ($arg =~ m/^(--?[A-Za-z][\w-]*)(?:=(.*))?$/s
      && ($names{$1} || $1 eq "--max-jobs-run" || $1 eq "-tc" || $1 eq "--config")) {
    my ($name, $value) = ($1, $2);
    shift @ARGV;
    if (!defined $value) {
      @ARGV or fail("option $name needs a value\n");
      $value = shift @ARGV;
    }
    if ($name eq "--max-jobs-run" || $name eq "-tc") {
      $value =~ m/^\d+$/ or fail("--max-jobs-run needs a number, got '$value'\n");
      $max_jobs_run = $value;
    } elsif ($name eq "--config") {
      -f $value or fail("no config file $value\n");
      $config = $value;
    } else {
      $opts{$names{$name}} = $value;
    }
  } elsif ($arg =~ m/^([\w_][\w\d_]*)=(\d+):(\d+)$/) {
    ($jobname, $jobstart, $jobend) = ($1, $2, $3);
    $jobstart >= 1 && $jobend >= $jobstart or fail("bad job range $arg\n");
    shift @ARGV;
  } elsif ($arg =~ m/^-/ && $arg ne "-") {
    fail("unknown option $arg\n");
  } else {
    last;
  }
}
@ARGV >= 2 or fail("usage: slurm.pl [options] [JOB=1:N] <log-file> <command...>\n");
my $logfile = shift @ARGV;
my $cmd = @ARGV == 1 ? $ARGV[0] : join(" ", map { m/\s/ ? "\"$_\"" : $_ } @ARGV);

# Read the config: the submit command, option rules, defaults.
my $text = $config ? do { local (@ARGV, $/) = ($config); <> } : $default_config;
my ($submit, %exact, %wild, %defaults);
my $line_no = 0;
for my $line (split /\n/, $text) {
  $line_no++;
  $line =~ s/#.*//;
  next if $line =~ m/^\s*$/;
  if ($line =~ m/^command\s+(.+?)\s*$/) {
    $submit = $1;
  } elsif ($line =~ m/^option\s+(\w+)=\*\s*(.*?)\s*$/) {
    $wild{$1} = $2;
  } elsif ($line =~ m/^option\s+(\w+)=(\S+)\s*(.*?)\s*$/) {
    $exact{"$1=$2"} = $3;
  } elsif ($line =~ m/^default\s+(\w+)=(\S+)\s*$/) {
    $defaults{$1} = $2;
  } else {
    fail(($config || "built-in config") . ":$line_no: cannot parse '$line'\n");
  }
}
defined $submit or fail(($config || "built-in config") . ": no 'command' line\n");
my %values = (%defaults, %opts);
my @sbatch_opts;
for my $name (sort keys %values) {
  my $v = $values{$name};
  if (exists $exact{"$name=$v"}) {
    push @sbatch_opts, $exact{"$name=$v"} if length $exact{"$name=$v"};
  } elsif (exists $wild{$name}) {
    (my $o = $wild{$name}) =~ s/\$0/$v/g;
    push @sbatch_opts, $o;
  } else {
    fail(($config || "built-in config") . ": no rule for option $name=$v\n");
  }
}

# The batch script: one array task per job.
my $logdir = dirname($logfile);
my $qdir = "$logdir/q";
make_path($qdir);
(my $base = basename($logfile)) =~ s/\.log$//;
$base =~ s/\Q$jobname\E/array/g if defined $jobname;
my $script = "$qdir/$base.sh";
my $task_log = $logfile;
my $task_cmd = $cmd;
if (defined $jobname) {
  $task_log =~ s/\Q$jobname\E/\${SLURM_ARRAY_TASK_ID}/g;
  $task_cmd =~ s/\Q$jobname\E/\${SLURM_ARRAY_TASK_ID}/g;
}
(my $quoted_cmd = $task_cmd) =~ s/'/'\\''/g;
open(my $fh, ">", $script) or fail("cannot write $script: $!\n");
print $fh <<"EOF";
#!/usr/bin/env bash
cd "@{[ $ENV{PWD} // "." ]}"
. ./path.sh 2>/dev/null || true
SLURM_ARRAY_TASK_ID=\${SLURM_ARRAY_TASK_ID:-$jobstart}
log="$task_log"
mkdir -p "\$(dirname "\$log")"
cat > "\$log" <<'SLURM_PL_EOF'
# $task_cmd
SLURM_PL_EOF
echo "# Started at \$(date)" >> "\$log"
start=\$(date +%s)
bash -c '$quoted_cmd' >> "\$log" 2>&1
rc=\$?
echo "# Accounting: time=\$((\$(date +%s) - start)) threads=$values{num_threads}" >> "\$log"
echo "# Ended (code \$rc) at \$(date), elapsed time \$((\$(date +%s) - start)) seconds" >> "\$log"
exit \$rc
EOF
close($fh);
chmod 0755, $script;

my $array = "--array=$jobstart-$jobend" . ($max_jobs_run ? "%$max_jobs_run" : "");
my $submit_cmd = join(" ", $submit, "--wait", @sbatch_opts, $array, "--job-name=$base",
                      "--output=$qdir/$base-%a.out", $script);
if (open(my $sf, ">", "$qdir/$base.submit")) { print $sf "$submit_cmd\n"; close($sf); }
system($submit_cmd);

# Count failures from the logs (sbatch --wait's status says only that one failed).
my $failed = 0;
for my $id ($jobstart .. $jobend) {
  (my $l = $logfile) =~ s/\Q$jobname\E/$id/g if defined $jobname;
  $l = $logfile unless defined $jobname;
  my $ok = 0;
  if (open(my $lf, "<", $l)) {
    while (<$lf>) { $ok = 1 if m/^# Ended \(code 0\)/; }
  }
  $failed++ unless $ok;
}
if ($failed) {
  (my $pattern = $logfile) =~ s/\Q$jobname\E/*/g if defined $jobname;
  $pattern = $logfile unless defined $jobname;
  print STDERR "slurm.pl: $failed / " . ($jobend - $jobstart + 1) . " failed, log is in $pattern\n";
  exit 1;
}
exit 0;
