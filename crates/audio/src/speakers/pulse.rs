//! PulseAudio / PipeWire (through pipewire-pulse) over the native protocol, with the pure-Rust
//! `pulseaudio` crate for message encoding. We drive the socket ourselves, blocking:
//! the server grants byte credit with `Request` messages as its buffer drains, and `play` waits
//! for credit — that is the backpressure. Every message is read whole before it is parsed, so
//! messages we do not care about are skipped without breaking the framing.

use std::ffi::CString;
use std::io::{self, BufReader, Cursor, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use pulseaudio::protocol::stream::{BufferAttr, StreamFlags};
use pulseaudio::protocol::{
    self, ChannelMap, ChannelVolume, Command, CreatePlaybackStreamReply, PlaybackStreamParams,
    Prop, Props, SampleFormat, SampleSpec, TagStructReader,
};

use super::{Device, DeviceError, DeviceResult, BUFFER_MS};

/// How long a blocking read may wait before the server counts as hung.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Sequence numbers of our commands.
const SEQ_CREATE: u32 = 10;
const SEQ_DRAIN: u32 = 11;
const SEQ_FLUSH: u32 = 12;

pub struct PulseDevice {
    sock: BufReader<UnixStream>,
    version: u16,
    channel: u32,
    /// Bytes the server has asked for and not yet received.
    credit: usize,
    server: String,
}

fn lost(what: &str, e: io::Error) -> DeviceError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return DeviceError::Lost(format!(
            "the sound server closed the connection while {what}"
        ));
    }
    DeviceError::Lost(format!("sound server connection lost while {what}: {e}"))
}

fn proto_err(e: protocol::ProtocolError) -> io::Error {
    match e {
        protocol::ProtocolError::Io(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

impl PulseDevice {
    pub fn open(rate: u32) -> Result<PulseDevice, String> {
        let path = pulseaudio::socket_path_from_env().ok_or(
            "no PulseAudio/PipeWire socket found ($PULSE_SERVER, $XDG_RUNTIME_DIR/pulse/native)",
        )?;
        let stream = UnixStream::connect(&path)
            .map_err(|e| format!("cannot connect to {}: {e}", path.display()))?;
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let mut sock = BufReader::new(stream);
        let version = handshake(&mut sock).map_err(|e| format!("handshake failed: {e}"))?;
        let bytes_per_ms = rate as usize * 2 / 1000;
        let ms = |n: u32| (n as usize * bytes_per_ms).max(2) as u32 & !1;
        let mut props = Props::new();
        props.set(
            Prop::MediaName,
            CString::new("q3tts speech").expect("no NUL"),
        );
        let params = PlaybackStreamParams {
            sample_spec: SampleSpec {
                format: SampleFormat::S16Le,
                channels: 1,
                sample_rate: rate,
            },
            channel_map: ChannelMap::mono(),
            cvolume: Some(ChannelVolume::norm(1)),
            sink_name: Some(protocol::DEFAULT_SINK.to_owned()),
            buffer_attr: BufferAttr {
                max_length: u32::MAX,
                target_length: ms(BUFFER_MS),
                pre_buffering: ms(BUFFER_MS / 2),
                minimum_request_length: ms(10),
                fragment_size: u32::MAX,
            },
            flags: StreamFlags {
                adjust_latency: true,
                ..Default::default()
            },
            props,
            ..Default::default()
        };
        send(
            sock.get_mut(),
            SEQ_CREATE,
            &Command::CreatePlaybackStream(params),
            version,
        )
        .map_err(|e| format!("cannot create a playback stream: {e}"))?;
        let reply = loop {
            let (seq, cmd, payload) =
                read_message(&mut sock, version).map_err(|e| format!("no stream reply: {e}"))?;
            match cmd {
                Some(Command::Reply) if seq == SEQ_CREATE => {
                    let mut cur = Cursor::new(&payload[..]);
                    skip_tag_and_seq(&mut cur, version).map_err(|e| e.to_string())?;
                    let mut ts = TagStructReader::new(&mut cur, version);
                    break ts
                        .read::<CreatePlaybackStreamReply>()
                        .map_err(|e| format!("bad stream reply: {e}"))?;
                }
                Some(Command::Error(e)) if seq == SEQ_CREATE => {
                    return Err(format!("the server refused the playback stream: {e:?}"))
                }
                _ => continue,
            }
        };
        let server = format!(
            "{} → {}",
            path.display(),
            reply
                .sink_name
                .as_ref()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        Ok(PulseDevice {
            sock,
            version,
            channel: reply.channel,
            credit: reply.requested_bytes as usize,
            server,
        })
    }

    /// Handles one server message (blocking until it arrives).
    fn handle_next(&mut self) -> DeviceResult<Option<(u32, Command)>> {
        let (seq, cmd, _) = read_message(&mut self.sock, self.version)
            .map_err(|e| lost("waiting for the server", e))?;
        match cmd {
            Some(Command::Request(r)) if r.channel == self.channel => {
                self.credit += r.length as usize;
                Ok(None)
            }
            Some(Command::PlaybackStreamKilled(ch)) if ch == self.channel => Err(
                DeviceError::Lost("the server removed our playback stream".into()),
            ),
            Some(other) => Ok(Some((seq, other))),
            None => Ok(None),
        }
    }

    /// Processes every message already waiting, without blocking. Errors if the server is gone.
    fn pump(&mut self) -> DeviceResult<()> {
        loop {
            if self.sock.buffer().is_empty() {
                self.sock
                    .get_ref()
                    .set_nonblocking(true)
                    .map_err(|e| lost("polling", e))?;
                let ready = self.sock.fill_buf_checked();
                self.sock
                    .get_ref()
                    .set_nonblocking(false)
                    .map_err(|e| lost("polling", e))?;
                match ready {
                    Ok(0) => {
                        return Err(DeviceError::Lost(
                            "the sound server closed the connection".into(),
                        ))
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) => return Err(lost("polling", e)),
                }
            }
            self.handle_next()?;
        }
    }

    /// Sends a command and waits for its reply, granting credit meanwhile.
    fn command_and_wait(&mut self, seq: u32, cmd: &Command, what: &str) -> DeviceResult<()> {
        send(self.sock.get_mut(), seq, cmd, self.version).map_err(|e| lost(what, e))?;
        loop {
            match self.handle_next()? {
                Some((s, Command::Reply)) if s == seq => return Ok(()),
                Some((s, Command::Error(e))) if s == seq => {
                    return Err(DeviceError::Failed(format!("{what}: server error {e:?}")))
                }
                _ => {}
            }
        }
    }
}

/// `fill_buf` that reports how many bytes are buffered (0 = end of stream).
trait FillChecked {
    fn fill_buf_checked(&mut self) -> io::Result<usize>;
}

impl FillChecked for BufReader<UnixStream> {
    fn fill_buf_checked(&mut self) -> io::Result<usize> {
        io::BufRead::fill_buf(self).map(|b| b.len())
    }
}

impl Device for PulseDevice {
    fn play(&mut self, pcm: &[i16]) -> DeviceResult<()> {
        self.pump()?;
        let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            while self.credit < 2 {
                self.handle_next()?;
            }
            let n = rest.len().min(self.credit) & !1;
            protocol::write_memblock(self.sock.get_mut(), self.channel, &rest[..n], 0)
                .map_err(|e| lost("sending audio", proto_err(e)))?;
            self.credit -= n;
            rest = &rest[n..];
        }
        Ok(())
    }

    fn drain(&mut self) -> DeviceResult<()> {
        self.pump()?;
        self.command_and_wait(
            SEQ_DRAIN,
            &Command::DrainPlaybackStream(self.channel),
            "draining",
        )
    }

    fn discard(&mut self) {
        // Best effort: a dead connection shows up at the next `play` or `alive`.
        let _ = send(
            self.sock.get_mut(),
            SEQ_FLUSH,
            &Command::FlushPlaybackStream(self.channel),
            self.version,
        );
    }

    fn alive(&mut self) -> bool {
        self.pump().is_ok()
    }

    fn describe(&self) -> String {
        format!("pulse {}", self.server)
    }
}

fn send(w: &mut impl Write, seq: u32, cmd: &Command, version: u16) -> io::Result<()> {
    protocol::write_command_message(w, seq, cmd, version).map_err(proto_err)
}

/// Reads one whole message: (sequence number, parsed command if we understand it, payload).
fn read_message(
    r: &mut BufReader<UnixStream>,
    version: u16,
) -> io::Result<(u32, Option<Command>, Vec<u8>)> {
    let desc = protocol::read_descriptor(r).map_err(proto_err)?;
    let mut payload = vec![0u8; desc.length as usize];
    r.read_exact(&mut payload)?;
    if desc.channel != u32::MAX {
        // Audio data for a record stream: not ours.
        return Ok((0, None, payload));
    }
    match Command::read_tag_prefixed(&mut Cursor::new(&payload[..]), version) {
        Ok((seq, cmd)) => Ok((seq, Some(cmd), payload)),
        Err(_) => Ok((0, None, payload)),
    }
}

/// Skips the command tag and sequence number at the start of a reply payload.
fn skip_tag_and_seq(cur: &mut Cursor<&[u8]>, version: u16) -> Result<(), protocol::ProtocolError> {
    let mut ts = TagStructReader::new(cur, version);
    ts.read_u32()?;
    ts.read_u32()?;
    Ok(())
}

/// Authenticates and names the client; returns the negotiated protocol version.
fn handshake(sock: &mut BufReader<UnixStream>) -> io::Result<u16> {
    let cookie = pulseaudio::cookie_path_from_env()
        .and_then(|p| std::fs::read(p).ok())
        .unwrap_or_default();
    let auth = protocol::AuthParams {
        version: protocol::MAX_VERSION,
        supports_shm: false,
        supports_memfd: false,
        cookie,
    };
    send(
        sock.get_mut(),
        0,
        &Command::Auth(auth),
        protocol::MAX_VERSION,
    )?;
    let (_, reply) =
        protocol::read_reply_message::<protocol::AuthReply>(sock, protocol::MAX_VERSION)
            .map_err(proto_err)?;
    let version = protocol::MAX_VERSION.min(reply.version);
    let mut props = Props::new();
    props.set(
        Prop::ApplicationName,
        CString::new("q3tts").expect("no NUL"),
    );
    send(sock.get_mut(), 1, &Command::SetClientName(props), version)?;
    protocol::read_reply_message::<protocol::SetClientNameReply>(sock, version)
        .map_err(proto_err)?;
    Ok(version)
}
