# A PSGI app for Starlet, which takes its listening socket from Server::Starter's
# SERVER_STARTER_PORT (hotproxy sets it), so plackup runs unmodified:
#   npx hotproxy --listen 8888 -- plackup -s Starlet -E deployment --max-workers 4 examples/perl-starlet/app.psgi
# -E deployment leaves out the development middleware (an access log line per request).
use strict;
use warnings;

my $app = sub {
    my $gen = $ENV{SERVER_STARTER_GENERATION} // '-';
    return [200, ['Content-Type' => 'text/plain'], ["hello from Starlet, generation $gen, pid $$\n"]];
};
