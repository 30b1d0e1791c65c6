#!/usr/bin/env perl
# spk2utt_to_utt2spk.pl: convert a spk2utt table ("<spk> <utt1> <utt2> ..." per line)
# into an utt2spk table ("<utt> <spk>" per line), in input order.
#
#   spk2utt_to_utt2spk.pl [<spk2utt>] > utt2spk
#
# Reads the file(s) given, or stdin. A line with a speaker but no utterance is an
# error (exit 1).
use strict;
use warnings;

for my $f (@ARGV) {
  -r $f or do { print STDERR "spk2utt_to_utt2spk.pl: cannot read $f\n"; exit 1; };
}

while (my $line = <>) {
  my @f = split(' ', $line);
  next unless @f;    # tolerate blank lines
  if (@f < 2) {
    chomp $line;
    print STDERR "spk2utt_to_utt2spk.pl: $ARGV: expected '<spk> <utt1> ...', got '$line' (line $.)\n";
    exit 1;
  }
  my $spk = shift @f;
  print "$_ $spk\n" for @f;
} continue {
  close ARGV if eof;    # reset $. for each input file
}
exit 0;
