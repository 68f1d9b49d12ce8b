// Energy VAD: a frame is speech when it is louder than the noise floor by a margin. The floor is the quietest
// frame of the last second: speech always has quieter moments between syllables and words, while steady line
// noise (hiss, fans) is its own floor and never counts as speech.
import { type AudioFrame, dbfs } from '../audio.js';
import { ThresholdVad, type VadOptions } from './vad.js';

export interface EnergyVadOptions extends VadOptions {
  /** dB above the noise floor that reads as certain speech. */
  marginDb: number;
  /** Never treat anything quieter than this as speech, whatever the floor. */
  minDbfs: number;
}

const FLOOR_WINDOW_MS = 1000;

export const ENERGY_VAD_DEFAULTS: EnergyVadOptions = { threshold: 0.5, minSpeechMs: 60, minSilenceMs: 200, marginDb: 12, minDbfs: -50 };

export class EnergyVad extends ThresholdVad {
  private levels: number[] = [];

  constructor(private readonly energy: EnergyVadOptions = ENERGY_VAD_DEFAULTS) {
    super(energy);
  }

  protected confidence(frame: AudioFrame): number {
    const level = Math.max(-100, dbfs(frame.pcm));
    const frameMs = (frame.pcm.length * 1000) / frame.sampleRate;
    this.levels.push(level);
    if (this.levels.length > FLOOR_WINDOW_MS / frameMs) this.levels.shift();
    if (level < this.energy.minDbfs) return 0;
    const floor = Math.min(...this.levels);
    const above = level - Math.max(floor, -70);
    return Math.max(0, Math.min(1, above / this.energy.marginDb / 2));
  }

  override reset(): void {
    super.reset();
    this.levels = [];
  }
}
