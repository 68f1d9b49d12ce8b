// The browser call's two audio worklets (plain JS: loaded by URL into the AudioWorklet scope, no bundling).
// `capture`: microphone at the context's rate -> 16 kHz PCM16 in 20 ms messages (linear resampling; zeros when muted).
// `player`: 16 kHz PCM16 from the agent -> the context's rate, through a jitter buffer that starts after 60 ms are
// queued, refills after an underrun, and empties at once on `clear` (barge-in); it says when its audio starts
// (`playing`, with the audio clock's time of the first sample) and stops (`drained`).
/* global AudioWorkletProcessor, registerProcessor, sampleRate, currentTime */

const RATE = 16000;
const FRAME = 320;

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.ratio = sampleRate / RATE;
    this.pos = 0;
    this.out = new Int16Array(FRAME);
    this.n = 0;
    this.muted = false;
    this.port.onmessage = (e) => {
      if (e.data && e.data.type === 'mute') this.muted = Boolean(e.data.muted);
    };
  }

  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    if (!ch) return true;
    while (this.pos < ch.length) {
      const i = Math.floor(this.pos);
      const f = this.pos - i;
      const a = ch[i];
      const b = i + 1 < ch.length ? ch[i + 1] : a;
      const v = this.muted ? 0 : a + (b - a) * f;
      this.out[this.n++] = Math.max(-1, Math.min(1, v)) * 0x7fff;
      if (this.n === FRAME) {
        this.port.postMessage(this.out.buffer, [this.out.buffer]);
        this.out = new Int16Array(FRAME);
        this.n = 0;
      }
      this.pos += this.ratio;
    }
    this.pos -= ch.length;
    return true;
  }
}

const CAPACITY = RATE * 60;
const PREBUFFER = RATE * 0.06;

class PlayerProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.buf = new Float32Array(CAPACITY);
    this.written = 0;
    this.read = 0;
    this.playing = false;
    this.step = RATE / sampleRate;
    this.port.onmessage = (e) => {
      const d = e.data;
      if (d.type === 'audio') {
        const pcm = new Int16Array(d.pcm);
        for (let i = 0; i < pcm.length; i++) this.buf[this.written++ % CAPACITY] = pcm[i] / 0x8000;
        if (this.written - this.read > CAPACITY) this.read = this.written - CAPACITY;
      } else if (d.type === 'clear') {
        this.read = this.written;
        if (this.playing) this.port.postMessage({ type: 'drained', cleared: true });
        this.playing = false;
      }
    };
  }

  process(_inputs, outputs) {
    const out = outputs[0];
    const first = out[0];
    for (let k = 0; k < first.length; k++) {
      let v = 0;
      if (!this.playing && this.written - this.read >= PREBUFFER) {
        this.playing = true;
        // When its first sample is rendered, on the audio clock (the context's currentTime, in seconds).
        this.port.postMessage({ type: 'playing', at: currentTime + k / sampleRate });
      }
      if (this.playing) {
        if (this.read + 1 >= this.written) {
          this.playing = false;
          this.port.postMessage({ type: 'drained', cleared: false });
        } else {
          const i = Math.floor(this.read);
          const f = this.read - i;
          v = this.buf[i % CAPACITY] * (1 - f) + this.buf[(i + 1) % CAPACITY] * f;
          this.read += this.step;
        }
      }
      for (let c = 0; c < out.length; c++) out[c][k] = v;
    }
    return true;
  }
}

registerProcessor('capture', CaptureProcessor);
registerProcessor('player', PlayerProcessor);
