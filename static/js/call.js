// The WebRTC side shared by both pages: camera, one peer connection with the server's media
// worker (non-trickle offer), the remote stream, the status region and the test hook.

import { t } from "./i18n.js";

const ICE_GATHERING_CAP_MS = 3000;
const BUSY_STATES = new Set(["connecting", "waiting", "answered"]);

export async function openCamera(videoElement) {
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: true,
    video: { width: { ideal: 640 }, height: { ideal: 480 } },
  });
  videoElement.srcObject = stream;
  return stream;
}

export function stopStream(stream) {
  for (const track of stream?.getTracks() || []) track.stop();
}

function play(video) {
  // The call started from a click, so autoplay with sound is allowed; if the browser still
  // refuses, play muted rather than show a frozen picture.
  video.play().catch(() => {
    video.muted = true;
    video.play().catch(() => {});
  });
}

function iceGatheringComplete(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const check = () => pc.iceGatheringState === "complete" && done();
    const timer = setTimeout(done, ICE_GATHERING_CAP_MS);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

/** One leg between this browser and the server's media worker. */
export class MediaLeg {
  constructor({ iceServers, localStream, remoteVideo }) {
    this.pc = new RTCPeerConnection({ iceServers: iceServers || [] });
    this.remoteVideo = remoteVideo;
    this.remoteStream = new MediaStream();
    for (const track of localStream.getTracks()) this.pc.addTrack(track, localStream);
    // The server's relay tracks may arrive without a stream: collect them into our own.
    this.pc.addEventListener("track", (event) => {
      this.remoteStream.addTrack(event.track);
      if (remoteVideo.srcObject !== this.remoteStream) remoteVideo.srcObject = this.remoteStream;
      play(remoteVideo);
    });
  }

  /** Create the offer and wait for ICE gathering; resolves with the complete SDP. */
  async offer() {
    await this.pc.setLocalDescription(await this.pc.createOffer());
    await iceGatheringComplete(this.pc);
    return this.pc.localDescription.sdp;
  }

  async answer(sdp) {
    await this.pc.setRemoteDescription({ type: "answer", sdp });
    await this.keepResolution();
  }

  /**
   * When the CPU or the network is short, send fewer frames rather than smaller ones: the
   * identity check reads the card and matches the face from this video, and the recording is
   * the bank's evidence. (The browser's default trades resolution away first.)
   */
  async keepResolution() {
    for (const sender of this.pc.getSenders()) {
      if (sender.track?.kind !== "video") continue;
      try {
        const parameters = sender.getParameters();
        parameters.degradationPreference = "maintain-resolution";
        await sender.setParameters(parameters);
      } catch {
        // A browser without the setting keeps its default; the call goes on.
      }
    }
  }

  /** Resolves once the remote video element shows decoded frames. */
  remoteFrames() {
    const video = this.remoteVideo;
    return new Promise((resolve) => {
      const check = () => {
        if (video.videoWidth > 0 && video.readyState >= 2) {
          for (const name of events) video.removeEventListener(name, check);
          resolve();
        }
      };
      const events = ["loadeddata", "resize", "playing", "timeupdate"];
      for (const name of events) video.addEventListener(name, check);
      check();
    });
  }

  async stats() {
    let framesDecoded = 0;
    let audioPacketsReceived = 0;
    if (this.pc.connectionState !== "closed") {
      const report = await this.pc.getStats();
      report.forEach((stat) => {
        if (stat.type !== "inbound-rtp") return;
        if (stat.kind === "video") framesDecoded += stat.framesDecoded || 0;
        if (stat.kind === "audio") audioPacketsReceived += stat.packetsReceived || 0;
      });
    }
    return { videoWidth: this.remoteVideo.videoWidth, framesDecoded, audioPacketsReceived };
  }

  close() {
    this.pc.close();
    this.remoteVideo.srcObject = null;
  }
}

/**
 * The status region: words for people, `data-state` for machines, and an indeterminate
 * progress bar for anything that takes a while.
 */
export class StatusView {
  constructor(element) {
    this.element = element;
    this.text = element.querySelector(".status-text");
    this.progress = element.querySelector("progress");
  }

  get state() {
    return this.element.dataset.state;
  }

  show(state, words) {
    this.element.dataset.state = state;
    this.text.textContent = words;
    this.progress.hidden = !BUSY_STATES.has(state);
    this.element.setAttribute("aria-busy", String(BUSY_STATES.has(state)));
  }

  set callId(callId) {
    if (callId) this.element.dataset.callId = callId;
    else delete this.element.dataset.callId;
  }
}

/** Words for an `error` frame: our own text for known codes, else the server's detail. */
export function errorWords(message) {
  // The most specific words first: a limit names which one (`error.rate_limited.ip_rate`).
  const keys = [message.limit && `error.${message.code}.${message.limit}`, `error.${message.code}`];
  const known = keys.find((key) => key && t(key) !== key);
  const params = { s: message.retry_after_s ?? "" };
  const words = known ? t(known, params) : message.detail || t("error.generic");
  return t("status.error", { detail: words });
}

/** `window.vbStats()` for tests: remote video size and inbound RTP counters. */
export function exposeStats(currentLeg, remoteVideo) {
  window.vbStats = async () => {
    const leg = currentLeg();
    if (!leg) return { videoWidth: remoteVideo.videoWidth, framesDecoded: 0, audioPacketsReceived: 0 };
    return leg.stats();
  };
}

/**
 * The media half of a call, the same on both pages: offer to the server once the page has a
 * camera stream, apply the server's answer, follow media state, and show "in call" once media is
 * connected and remote frames decode. `currentCall()` returns the page's call object (or null).
 * Returns `startMedia(call)`; `call.stream` must hold the local camera stream, `call.iceServers`
 * the `ice_servers` of the message that connected the call. Calling it again
 * for the same call (e.g. a new teller after `call.requeued`) replaces the call's leg.
 */
export function callMedia(signaling, { currentCall, status, remoteVideo }) {
  const isCurrent = (message) => {
    const call = currentCall();
    return Boolean(call && call.id && message.call_id === call.id);
  };
  const enterCallIfReady = (mine) => {
    if (currentCall() === mine && mine.mediaConnected && mine.framesSeen) {
      status.show("in-call", t("status.in_call"));
    }
  };
  signaling
    .on("webrtc.answer", (message) => {
      const mine = currentCall();
      if (!isCurrent(message) || !mine.leg) return;
      mine.leg.answer(message.sdp).catch(() => {
        if (currentCall() === mine) status.show("error", t("status.media_failed"));
      });
    })
    .on("media.state", (message) => {
      // No leg: the call went back to the queue and its old leg was closed on purpose.
      if (!isCurrent(message) || !currentCall().leg) return;
      if (message.state === "connected") {
        currentCall().mediaConnected = true;
        enterCallIfReady(currentCall());
      } else if (message.state === "failed") {
        status.show("error", t("status.media_failed"));
      }
    });

  return async function startMedia(mine) {
    mine.leg?.close();
    mine.mediaConnected = false;
    mine.framesSeen = false;
    mine.leg = new MediaLeg({
      // The call's own (`call.answered` / `call.connected`: TURN with a short-lived credential);
      // `hello` has STUN URLs only.
      iceServers: mine.iceServers || signaling.hello?.ice_servers,
      localStream: mine.stream,
      remoteVideo,
    });
    mine.leg.remoteFrames().then(() => {
      mine.framesSeen = true;
      enterCallIfReady(mine);
    });
    const sdp = await mine.leg.offer();
    if (currentCall() === mine) signaling.send("webrtc.offer", { call_id: mine.id, sdp });
  };
}
