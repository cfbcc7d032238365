//! ALSA through libasound loaded at run time (`dlopen("libasound.so.2")` with libloading):
//! no headers or -dev package at build time, and a clean error where ALSA is absent.
//! `snd_pcm_writei` in blocking mode is the backpressure; `snd_pcm_drain` plays the tail,
//! `snd_pcm_drop` discards.

use std::ffi::{c_char, c_int, c_long, c_uint, c_ulong, c_void, CStr, CString};

use libloading::Library;

use super::{Device, DeviceError, DeviceResult, BUFFER_MS};

type Pcm = *mut c_void;

const SND_PCM_STREAM_PLAYBACK: c_int = 0;
const SND_PCM_FORMAT_S16_LE: c_int = 2;
const SND_PCM_ACCESS_RW_INTERLEAVED: c_int = 3;
const SND_PCM_STATE_DISCONNECTED: c_int = 8;
const EPIPE: c_int = 32;
const ESTRPIPE: c_int = 86;
const EINTR: c_int = 4;
const EAGAIN: c_int = 11;

/// The libasound entry points we use, resolved once.
struct Api {
    open: unsafe extern "C" fn(*mut Pcm, *const c_char, c_int, c_int) -> c_int,
    set_params: unsafe extern "C" fn(Pcm, c_int, c_int, c_uint, c_uint, c_int, c_uint) -> c_int,
    writei: unsafe extern "C" fn(Pcm, *const c_void, c_ulong) -> c_long,
    recover: unsafe extern "C" fn(Pcm, c_int, c_int) -> c_int,
    drain: unsafe extern "C" fn(Pcm) -> c_int,
    drop: unsafe extern "C" fn(Pcm) -> c_int,
    prepare: unsafe extern "C" fn(Pcm) -> c_int,
    state: unsafe extern "C" fn(Pcm) -> c_int,
    close: unsafe extern "C" fn(Pcm) -> c_int,
    strerror: unsafe extern "C" fn(c_int) -> *const c_char,
    /// Keeps the library mapped while the pointers above are used.
    _lib: Library,
}

impl Api {
    fn load() -> Result<Api, String> {
        // SAFETY: libasound's initialisers have no preconditions; the symbols below are looked
        // up with the C signatures documented in alsa-lib's pcm.h and error.h.
        unsafe {
            let lib = Library::new("libasound.so.2")
                .map_err(|e| format!("libasound.so.2 not found (install libasound2): {e}"))?;
            macro_rules! sym {
                ($name:literal) => {
                    *lib.get($name)
                        .map_err(|e| format!("libasound lacks a symbol: {e}"))?
                };
            }
            Ok(Api {
                open: sym!(b"snd_pcm_open\0"),
                set_params: sym!(b"snd_pcm_set_params\0"),
                writei: sym!(b"snd_pcm_writei\0"),
                recover: sym!(b"snd_pcm_recover\0"),
                drain: sym!(b"snd_pcm_drain\0"),
                drop: sym!(b"snd_pcm_drop\0"),
                prepare: sym!(b"snd_pcm_prepare\0"),
                state: sym!(b"snd_pcm_state\0"),
                close: sym!(b"snd_pcm_close\0"),
                strerror: sym!(b"snd_strerror\0"),
                _lib: lib,
            })
        }
    }

    fn err(&self, code: c_int) -> String {
        // SAFETY: snd_strerror returns a pointer to a static NUL-terminated string.
        unsafe {
            let p = (self.strerror)(code);
            if p.is_null() {
                format!("error {code}")
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        }
    }
}

pub struct AlsaDevice {
    api: Api,
    pcm: Pcm,
    name: String,
}

// SAFETY: the PCM handle is used only through &mut self, one thread at a time; alsa-lib PCM
// handles may move between threads.
unsafe impl Send for AlsaDevice {}

impl AlsaDevice {
    pub fn open(rate: u32) -> Result<AlsaDevice, String> {
        let api = Api::load()?;
        let name = std::env::var("Q3TTS_ALSA_DEVICE").unwrap_or_else(|_| "default".into());
        let cname = CString::new(name.clone()).map_err(|_| "bad ALSA device name".to_string())?;
        let mut pcm: Pcm = std::ptr::null_mut();
        // SAFETY: out-pointer and NUL-terminated name are valid for the call.
        let rc = unsafe { (api.open)(&mut pcm, cname.as_ptr(), SND_PCM_STREAM_PLAYBACK, 0) };
        if rc < 0 {
            return Err(format!("cannot open ALSA device {name:?}: {}", api.err(rc)));
        }
        // SAFETY: pcm was opened above.
        let rc = unsafe {
            (api.set_params)(
                pcm,
                SND_PCM_FORMAT_S16_LE,
                SND_PCM_ACCESS_RW_INTERLEAVED,
                1,
                rate,
                1,
                BUFFER_MS * 1000,
            )
        };
        if rc < 0 {
            let why = api.err(rc);
            // SAFETY: pcm is open and not used afterwards.
            unsafe { (api.close)(pcm) };
            return Err(format!(
                "ALSA device {name:?} refused mono s16 at {rate} Hz: {why}"
            ));
        }
        Ok(AlsaDevice { api, pcm, name })
    }

    fn lost(&self, what: &str, code: c_int) -> DeviceError {
        DeviceError::Lost(format!(
            "ALSA {what} failed on {:?}: {}",
            self.name,
            self.api.err(code)
        ))
    }
}

impl Device for AlsaDevice {
    fn play(&mut self, pcm: &[i16]) -> DeviceResult<()> {
        let mut rest = pcm;
        while !rest.is_empty() {
            // SAFETY: the buffer holds rest.len() interleaved mono frames.
            let n =
                unsafe { (self.api.writei)(self.pcm, rest.as_ptr().cast(), rest.len() as c_ulong) };
            if n >= 0 {
                rest = &rest[n as usize..];
                continue;
            }
            let code = n as c_int;
            if code == -EINTR || code == -EAGAIN {
                continue;
            }
            if code == -EPIPE || code == -ESTRPIPE {
                // Underrun (the producer was slower than real time) or suspend: recover, go on.
                // SAFETY: pcm is open.
                let rc = unsafe { (self.api.recover)(self.pcm, code, 1) };
                if rc < 0 {
                    return Err(self.lost("recovery", rc));
                }
                continue;
            }
            return Err(self.lost("write", code));
        }
        Ok(())
    }

    fn drain(&mut self) -> DeviceResult<()> {
        // SAFETY: pcm is open.
        let rc = unsafe { (self.api.drain)(self.pcm) };
        if rc < 0 && rc != -EPIPE {
            return Err(self.lost("drain", rc));
        }
        // Drained streams stop; prepare for the next request.
        // SAFETY: pcm is open.
        let rc = unsafe { (self.api.prepare)(self.pcm) };
        if rc < 0 {
            return Err(self.lost("prepare", rc));
        }
        Ok(())
    }

    fn discard(&mut self) {
        // SAFETY: pcm is open.
        unsafe {
            (self.api.drop)(self.pcm);
            (self.api.prepare)(self.pcm);
        }
    }

    fn alive(&mut self) -> bool {
        // SAFETY: pcm is open.
        unsafe { (self.api.state)(self.pcm) != SND_PCM_STATE_DISCONNECTED }
    }

    fn describe(&self) -> String {
        format!("alsa {}", self.name)
    }
}

impl Drop for AlsaDevice {
    fn drop(&mut self) {
        // SAFETY: pcm is open and dropped once.
        unsafe {
            (self.api.drop)(self.pcm);
            (self.api.close)(self.pcm);
        }
    }
}
