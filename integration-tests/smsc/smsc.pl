#!/usr/bin/perl
# An SMS centre for the SMPP connector's tests, on Debian's Net::SMPP
# (libnet-smpp-perl): SMPP 3.4 read and written by code that shares
# nothing with the connector (which uses the smpp34 crate).
#
# It listens on 127.0.0.1 (an ephemeral port), takes transceiver binds
# with the scripted password, answers submit_sm with hexadecimal message
# ids (or the scripted refusals), answers enquire_link and unbind, and
# drops a connection silent for --inactivity-ms. It never probes a link
# itself. The test harness (integration-tests/src/smsc.rs) drives it with
# one JSON object a line on stdin and reads one a line on stdout; every
# command carries a "ref" that its answer repeats:
#
#   stdin                                        stdout
#                                                {"event":"listening","port":P}
#   {"cmd":"script","ref":R,"password":..,       {"event":"scripted","ref":R}
#    "refuse_suffix":..,"throttle_next":N,
#    "queue_full_on_part_two":N} (any of them)
#   {"cmd":"sync","ref":R}                       {"event":"synced","ref":R}
#   {"cmd":"deliver","ref":R,"esm_class":E,      {"event":"deliver_resp","ref":R,"status":S}
#    "text":T,"receipted_message_id":I,          or {"event":"failed","ref":R,"why":..}
#    "message_state":M}
#   {"cmd":"unbind","ref":R}                     {"event":"unbind_resp","ref":R} or failed
#
# and of its own accord: {"event":"bind","accepted":true|false,...},
# {"event":"submit","accepted":true,"message_id":..,"destination":..,
# "esm_class":..,"data_coding":..,"registered_delivery":..,
# "validity_period":..,"short_message":HEX} or {"event":"submit",
# "accepted":false,"status":S}, {"event":"closed","why":..}.
# Events are printed before the PDU that answers them is written, so an
# answer the connector saw is always on stdout before a later "synced".
# It exits when stdin closes.

use strict;
use warnings;

use Getopt::Long;
use IO::Select;
use JSON::PP;
use Net::SMPP;
use Time::HiRes qw(time);

my $inactivity_ms = 0;
my %script = (
    password               => '',
    refuse_suffix          => undef,
    throttle_next          => 0,
    queue_full_on_part_two => 0,
);
GetOptions(
    'password=s'      => \$script{password},
    'inactivity-ms=i' => \$inactivity_ms,
) or die "usage: smsc.pl [--password P] [--inactivity-ms N]\n";

use constant {
    ESME_RINVCMDID  => 0x03,
    ESME_RINVDSTADR => 0x0B,
    ESME_RINVPASWD  => 0x0E,
    ESME_RMSGQFUL   => 0x14,
    ESME_RTHROTTLED => 0x58,
};

my $json = JSON::PP->new->canonical;
$| = 1;

sub emit {
    my (%event) = @_;
    print $json->encode(\%event), "\n";
}

my $listener = Net::SMPP->new_listen('127.0.0.1', port => 0, smpp_version => 0x34)
    or die "cannot listen: $!\n";
emit(event => 'listening', port => $listener->sockport);

my $select = IO::Select->new($listener, \*STDIN);
my %conns;      # fileno => { sock, last_read, requests => { seq => ref } }
my $bound;      # the connection last bound: deliver_sm and unbind go there
my $next_id = 0;
my $stdin_buffer = '';

sub close_conn {
    my ($conn, $why) = @_;
    $select->remove($conn->{sock});
    delete $conns{ fileno($conn->{sock}) };
    for my $ref (values %{ $conn->{requests} }) {
        emit(event => 'failed', ref => $ref, why => "link closed: $why");
    }
    $bound = undef if defined $bound && $bound == $conn;
    close $conn->{sock};
    emit(event => 'closed', why => $why);
}

sub on_submit {
    my ($conn, $pdu) = @_;
    my $sock = $conn->{sock};
    # UDH 05 00 03 ref total part: octet 5 is the part number.
    my $part_two = ($pdu->{esm_class} & 0x40)
        && length($pdu->{short_message}) > 5
        && ord(substr($pdu->{short_message}, 5, 1)) == 2;
    my $refusal;
    if ($script{throttle_next} > 0) {
        $script{throttle_next}--;
        $refusal = ESME_RTHROTTLED;
    } elsif ($part_two && $script{queue_full_on_part_two} > 0) {
        $script{queue_full_on_part_two}--;
        $refusal = ESME_RMSGQFUL;
    } elsif (defined $script{refuse_suffix}
        && $pdu->{destination_addr} =~ /\Q$script{refuse_suffix}\E\z/) {
        $refusal = ESME_RINVDSTADR;
    }
    if (defined $refusal) {
        emit(event => 'submit', accepted => JSON::PP::false, status => $refusal);
        $sock->submit_sm_resp(seq => $pdu->{seq}, status => $refusal, message_id => '');
        return;
    }
    # Hexadecimal ids, as many SMS centres give them.
    my $id = sprintf('%x', 0x1000 + $next_id++);
    emit(
        event               => 'submit',
        accepted            => JSON::PP::true,
        message_id          => $id,
        destination         => $pdu->{destination_addr},
        esm_class           => $pdu->{esm_class},
        data_coding         => $pdu->{data_coding},
        registered_delivery => $pdu->{registered_delivery},
        validity_period     => $pdu->{validity_period},
        short_message       => unpack('H*', $pdu->{short_message}),
    );
    $sock->submit_sm_resp(seq => $pdu->{seq}, message_id => $id);
}

sub on_pdu {
    my ($conn, $pdu) = @_;
    my $sock = $conn->{sock};
    my $cmd = $pdu->{cmd};
    if ($cmd == Net::SMPP::CMD_bind_transceiver) {
        if ($pdu->{password} eq $script{password}) {
            $bound = $conn;
            emit(event => 'bind', accepted => JSON::PP::true, system_id => $pdu->{system_id},
                interface_version => $pdu->{interface_version});
            $sock->bind_transceiver_resp(seq => $pdu->{seq}, system_id => 'test-smsc');
        } else {
            emit(event => 'bind', accepted => JSON::PP::false, system_id => $pdu->{system_id});
            $sock->bind_transceiver_resp(seq => $pdu->{seq}, status => ESME_RINVPASWD,
                system_id => '');
        }
    } elsif ($cmd == Net::SMPP::CMD_submit_sm) {
        on_submit($conn, $pdu);
    } elsif ($cmd == Net::SMPP::CMD_enquire_link) {
        $sock->enquire_link_resp(seq => $pdu->{seq});
    } elsif ($cmd == Net::SMPP::CMD_unbind) {
        $sock->unbind_resp(seq => $pdu->{seq});
        close_conn($conn, 'the ESME unbound');
    } elsif ($cmd == Net::SMPP::CMD_deliver_sm_resp || $cmd == Net::SMPP::CMD_unbind_resp) {
        my $ref = delete $conn->{requests}{ $pdu->{seq} };
        my $event = $cmd == Net::SMPP::CMD_unbind_resp ? 'unbind_resp' : 'deliver_resp';
        emit(event => $event, ref => $ref, status => $pdu->{status}) if defined $ref;
    } elsif (!($cmd & 0x80000000)) {
        $sock->generic_nack(seq => $pdu->{seq}, status => ESME_RINVCMDID);
    }
}

sub on_command {
    my ($command) = @_;
    my $cmd = $command->{cmd} // '';
    my $ref = $command->{ref};
    if ($cmd eq 'script') {
        for my $key (keys %script) {
            $script{$key} = $command->{$key} if exists $command->{$key};
        }
        emit(event => 'scripted', ref => $ref);
    } elsif ($cmd eq 'sync') {
        emit(event => 'synced', ref => $ref);
    } elsif (!defined $bound) {
        emit(event => 'failed', ref => $ref, why => 'no ESME is bound');
    } elsif ($cmd eq 'deliver') {
        my @optional;
        # C-octet string and integer optional parameters (SMPP 3.4 §5.3.2).
        push @optional, receipted_message_id => $command->{receipted_message_id} . "\0"
            if defined $command->{receipted_message_id};
        push @optional, message_state => chr($command->{message_state})
            if defined $command->{message_state};
        my $seq = $bound->{sock}->deliver_sm(
            async            => 1,
            source_addr_ton  => 1,
            source_addr_npi  => 1,
            source_addr      => '8613800138000',
            dest_addr_ton    => 5,
            dest_addr_npi    => 0,
            destination_addr => 'pushmail',
            esm_class        => $command->{esm_class},
            data_coding      => 0,
            short_message    => $command->{text},
            @optional,
        );
        $bound->{requests}{$seq} = $ref;
    } elsif ($cmd eq 'unbind') {
        $bound->{requests}{ $bound->{sock}->unbind(async => 1) } = $ref;
    } else {
        die "unknown command: $cmd\n";
    }
}

sub read_stdin {
    my $read = sysread(STDIN, $stdin_buffer, 65536, length $stdin_buffer);
    exit 0 if !$read;    # the harness is gone
    while ($stdin_buffer =~ s/\A([^\n]*)\n//) {
        on_command($json->decode($1)) if length $1;
    }
}

while (1) {
    my $now = time;
    my $timeout = 0.1;
    if ($inactivity_ms > 0) {
        for my $conn (values %conns) {
            my $left = $conn->{last_read} + $inactivity_ms / 1000 - $now;
            if ($left <= 0) {
                close_conn($conn, 'inactivity');
            } elsif ($left < $timeout) {
                $timeout = $left;
            }
        }
    }
    for my $handle ($select->can_read($timeout)) {
        if ($handle == $listener) {
            my $sock = $listener->accept or next;
            $conns{ fileno($sock) } = { sock => $sock, last_read => time, requests => {} };
            $select->add($sock);
        } elsif (fileno($handle) == fileno(STDIN)) {
            read_stdin();
        } else {
            my $conn = $conns{ fileno($handle) } or next;
            my $pdu = $handle->read_pdu();
            if (!$pdu) {
                close_conn($conn, 'the ESME closed the connection');
                next;
            }
            $conn->{last_read} = time;
            on_pdu($conn, $pdu);
        }
    }
}
