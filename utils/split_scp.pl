#!/usr/bin/env perl
# split_scp.pl: split a Kaldi table (scp, utt2spk, text ...) into N contiguous parts.
#
#   split_scp.pl [--utt2spk=<utt2spk>] <in.scp> <out1.scp> <out2.scp> ... <outN.scp>
#
# Without --utt2spk the lines are cut into N contiguous parts whose sizes differ by at
# most one (the first parts get the extra lines). With --utt2spk (or --utt2spk <file>)
# every speaker's utterances go to the same part: speakers are taken in the order in
# which they first appear in <in.scp>, cut into N contiguous groups whose line counts
# are as close to equal as a greedy cut can make them, and each part keeps its lines
# in input order (so a sorted input gives sorted parts).
# Errors (exit 1): missing/unreadable input, fewer lines (or speakers) than outputs,
# an utterance that utt2spk does not know.
use strict;
use warnings;

sub fail { print STDERR 'split_scp.pl: ', @_, "\n"; exit 1; }

my $usage = "Usage: split_scp.pl [--utt2spk=<utt2spk>] <in.scp> <out1.scp> ... <outN.scp>";

my $utt2spk_file;
while (@ARGV && $ARGV[0] =~ m/^--/) {
  my $opt = shift @ARGV;
  if ($opt =~ m/^--utt2spk=(.+)$/) {
    $utt2spk_file = $1;
  } elsif ($opt eq '--utt2spk') {
    @ARGV or fail("option --utt2spk requires a value");
    $utt2spk_file = shift @ARGV;
  } elsif ($opt eq '--') {
    last;
  } else {
    fail("unknown option $opt\n$usage");
  }
}
@ARGV >= 2 or fail("expected an input file and at least one output file\n$usage");

my ($in, @outs) = @ARGV;
my $num_out = scalar @outs;

-e $in or fail("input file $in does not exist");
open(my $ifh, '<', $in) or fail("cannot read input file $in: $!");
my @lines = <$ifh>;
close($ifh);
for (@lines) { $_ .= "\n" unless m/\n$/; }
my $num_lines = scalar @lines;

$num_lines >= $num_out
  or fail("input file $in has $num_lines line(s), fewer than the $num_out output files");

# parts: list of [line indices] per output.
my @parts;

if (!defined $utt2spk_file) {
  my $base  = int($num_lines / $num_out);
  my $extra = $num_lines % $num_out;
  my $next  = 0;
  for my $p (0 .. $num_out - 1) {
    my $n = $base + ($p < $extra ? 1 : 0);
    push @parts, [$next .. $next + $n - 1];
    $next += $n;
  }
} else {
  open(my $ufh, '<', $utt2spk_file) or fail("cannot read utt2spk file $utt2spk_file: $!");
  my %spk_of;
  while (my $l = <$ufh>) {
    my @f = split(' ', $l);
    next unless @f;
    @f == 2 or fail("$utt2spk_file: expected '<utt> <spk>', got '" . join(' ', @f) . "' (line $.)");
    $spk_of{$f[0]} = $f[1];
  }
  close($ufh);

  my (@speakers, %lines_of);
  for my $i (0 .. $#lines) {
    my ($utt) = split(' ', $lines[$i]);
    defined $utt or fail("$in: empty line (line " . ($i + 1) . ")");
    my $spk = $spk_of{$utt};
    defined $spk or fail("$in: utterance $utt (line " . ($i + 1) . ") is not in $utt2spk_file");
    push @speakers, $spk unless exists $lines_of{$spk};
    push @{$lines_of{$spk}}, $i;
  }
  my $num_spk = scalar @speakers;
  $num_spk >= $num_out
    or fail("$in has $num_spk speaker(s) (per $utt2spk_file), fewer than the $num_out output files");

  # Cumulative line counts after each speaker; cut where they come closest to
  # k * total / N, keeping at least one speaker per part.
  my @cum;
  my $acc = 0;
  for my $s (@speakers) { $acc += scalar @{$lines_of{$s}}; push @cum, $acc; }
  my @ends;    # index (into @speakers) of the last speaker of each part
  my $prev_end = -1;
  for my $p (1 .. $num_out - 1) {
    my $target = $num_lines * $p / $num_out;
    my $lo = $prev_end + 1;                  # at least one speaker in this part
    my $hi = $num_spk - 1 - ($num_out - $p); # leave one speaker per later part
    my $best = $lo;
    for my $e ($lo .. $hi) {
      $best = $e if abs($cum[$e] - $target) < abs($cum[$best] - $target);
      last if $cum[$e] > $target;
    }
    push @ends, $best;
    $prev_end = $best;
  }
  push @ends, $num_spk - 1;

  my $first = 0;
  for my $end (@ends) {
    my @idx = sort { $a <=> $b } map { @{$lines_of{$_}} } @speakers[$first .. $end];
    push @parts, \@idx;
    $first = $end + 1;
  }
}

for my $p (0 .. $num_out - 1) {
  open(my $ofh, '>', $outs[$p]) or fail("cannot write output file $outs[$p]: $!");
  print $ofh @lines[@{$parts[$p]}];
  close($ofh) or fail("error writing output file $outs[$p]: $!");
}
exit 0;
