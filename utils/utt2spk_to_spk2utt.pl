#!/usr/bin/env perl
# utt2spk_to_spk2utt.pl: convert an utt2spk table ("<utt> <spk>" per line) into a
# spk2utt table ("<spk> <utt1> <utt2> ..." per line).
#
#   utt2spk_to_spk2utt.pl [<utt2spk>] > spk2utt
#
# Reads the file(s) given, or stdin. Speakers are written in the order in which they
# first appear, each with its utterances in input order (so a utt2spk sorted by
# utterance with speaker-prefixed utterance ids gives a sorted spk2utt).
# A line that does not have exactly two fields is an error (exit 1).
use strict;
use warnings;

for my $f (@ARGV) {
  -r $f or do { print STDERR "utt2spk_to_spk2utt.pl: cannot read $f\n"; exit 1; };
}

my (@speakers, %utts_of);
while (my $line = <>) {
  my @f = split(' ', $line);
  next unless @f;    # tolerate blank lines
  if (@f != 2) {
    chomp $line;
    print STDERR "utt2spk_to_spk2utt.pl: $ARGV: expected '<utt> <spk>', got '$line' (line $.)\n";
    exit 1;
  }
  my ($utt, $spk) = @f;
  push @speakers, $spk unless exists $utts_of{$spk};
  push @{$utts_of{$spk}}, $utt;
} continue {
  close ARGV if eof;    # reset $. for each input file
}

for my $spk (@speakers) {
  print join(' ', $spk, @{$utts_of{$spk}}), "\n";
}
exit 0;
