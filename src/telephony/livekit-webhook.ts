// What LiveKit's webhooks mean for our calls (the route only verifies and parses them): room, participant and
// egress events of a call's room go on that call's audit trail; `room_finished` ends the call; `egress_ended` also
// records the recording's outcome; a phone joining a room of a tenant's SIP dispatch rule is answered. The LiveKit
// counterpart of Telephony's Twilio webhooks (telephony.ts).
import type { CallEventType } from '../lib/call-events.js';
import { AppError } from '../lib/errors.js';
import type { CallService } from '../services/calls.js';
import { egressRecordingKey } from '../storage/recording-store.js';
import type { Admission } from '../voice/admission.js';
import { type LiveKitService, type LiveKitWebhookEvent, parseRoomName, sipRoomPrefix } from './livekit.js';
import type { LiveKitAgent } from './livekit-agent.js';

/** LiveKit's webhook events written on the call's audit trail, and their names there. Others are ignored. */
export const LIVEKIT_WEBHOOK_EVENTS = {
  room_started: 'livekit.room_started',
  room_finished: 'livekit.room_finished',
  participant_joined: 'livekit.participant_joined',
  participant_left: 'livekit.participant_left',
  egress_ended: 'livekit.egress_ended',
} as const satisfies Record<string, CallEventType>;

/** Egress outcomes that leave a file: a recording cut at LiveKit's length limit is still a recording. */
const SAVED_EGRESS = new Set(['EGRESS_COMPLETE', 'EGRESS_LIMIT_REACHED']);

type Egress = NonNullable<LiveKitWebhookEvent['egressInfo']>;

export interface LiveKitWebhookDeps {
  calls: CallService;
  admission: Admission;
  agent: LiveKitAgent;
  /** True when Egress uploads to our recordings bucket (RECORDINGS_S3_*): its files are then the calls' recordings. */
  recordingsInBucket: boolean;
}

/** The call a room of the tenant carries: named in the room's name, or (a SIP dispatch room) the one put in it. */
export async function callInRoom(calls: CallService, tenantId: string, room: string): Promise<string | undefined> {
  const owner = parseRoomName(room);
  if (owner?.tenantId !== tenantId) return undefined;
  return owner.callId ?? (await calls.byRoom(tenantId, room))?.id;
}

export class LiveKitWebhook {
  constructor(private readonly deps: LiveKitWebhookDeps) {}

  /**
   * Writes a verified event on the call its room carries; true when it did. The tenant comes from the room name and
   * the call must exist for that tenant; LiveKit retries deliveries, so an event id already recorded is not written
   * again. A phone joining a room of the tenant's SIP dispatch rule is answered: that makes the room's call
   * (LiveKitAgent.answerSipCall).
   */
  async handle(lk: LiveKitService, event: LiveKitWebhookEvent): Promise<boolean> {
    if (!Object.hasOwn(LIVEKIT_WEBHOOK_EVENTS, event.event)) return false;
    const type = LIVEKIT_WEBHOOK_EVENTS[event.event as keyof typeof LIVEKIT_WEBHOOK_EVENTS];
    const { calls } = this.deps;
    const roomName = event.room?.name || event.egressInfo?.roomName || '';
    const owner = parseRoomName(roomName);
    if (!owner) return false;
    const { tenantId } = owner;
    let callId = await callInRoom(calls, tenantId, roomName);
    const dialledIn =
      event.event === 'participant_joined' && event.participant?.kind === 'SIP' && roomName.startsWith(sipRoomPrefix(tenantId));
    if (!callId && dialledIn) callId = await this.deps.agent.answerSipCall(lk, tenantId, roomName, event.participant!.attributes);
    if (!callId) return false;
    // The call must be the tenant's (a room name can name any call id).
    const call = await calls.get(tenantId, callId).catch((err: unknown) => {
      if (err instanceof AppError && err.code === 'not_found') return undefined;
      throw err;
    });
    if (!call) return false;

    const egress = event.egressInfo;
    const data = {
      livekit_event_id: event.id,
      room: roomName,
      ...(event.room?.sid && { room_sid: event.room.sid }),
      ...(event.participant && { participant_identity: event.participant.identity, participant_kind: event.participant.kind }),
      ...(egress && {
        egress_id: egress.egressId,
        egress_status: egress.status,
        ...(egress.error && { egress_error: egress.error }),
        files: egress.fileResults.map((f) => ({ filename: f.filename, location: f.location })),
      }),
    };
    // A redelivered event (the same id, possibly at the same moment) is recorded and acted on once.
    if (!event.id) await calls.event(tenantId, callId, type, data);
    else if (!(await calls.eventOnce(tenantId, callId, type, data, 'livekit_event_id'))) return false;
    if (event.event === 'egress_ended' && egress) await this.recordEgressEnd(tenantId, callId, egress);
    if (event.event === 'room_finished') {
      this.deps.admission.cancel(callId);
      await calls.end(tenantId, callId, 'completed', 'livekit room finished');
    }
    return true;
  }

  /** The recording's outcome in the call's own terms, next to LiveKit's raw event. */
  private async recordEgressEnd(tenantId: string, callId: string, egress: Egress): Promise<void> {
    const { calls } = this.deps;
    if (!SAVED_EGRESS.has(egress.status)) {
      await calls.event(tenantId, callId, 'recording.failed', {
        egress_id: egress.egressId,
        egress_status: egress.status,
        error: egress.error ?? null,
      });
      return;
    }
    const file = egress.fileResults.find((f) => f.location || f.filename);
    // FileInfo.duration is in nanoseconds (an int64, so a string in JSON).
    const durationNs = Number(file?.duration);
    const durationMs = file?.duration && Number.isFinite(durationNs) ? Math.round(durationNs / 1e6) : null;
    // With a recordings bucket, Egress uploads there, at the key startRecording gave it: the file is then the call's
    // recording, downloadable like any other. Elsewhere (Egress's own disk) it is only named in the event.
    const key = egressRecordingKey(tenantId, callId);
    const stored = this.deps.recordingsInBucket && egress.fileResults.some((f) => f.filename === key);
    const saved = {
      egress_id: egress.egressId,
      ...(file?.location && { location: file.location }),
      ...(file?.filename && { filename: file.filename }),
      ...(durationMs !== null && { duration_ms: durationMs }),
      downloadable: stored,
    };
    // Only a file in our bucket is the tenant's `recording.ready` (downloadable), published with the key and the entry.
    if (stored) await calls.setRecording(tenantId, callId, key, durationMs, { type: 'recording.saved', data: saved });
    else await calls.event(tenantId, callId, 'recording.saved', saved);
  }
}
