// UI text in Korean and English: follows the browser's language, with a switch. Texts with
// {fields} are filled by format(), which also chooses English plurals and Korean particles
// ({reps:# rep|# reps}, {cameras:을/를}: wording.js).

import { fill } from './wording.js';

const STRINGS = {
  en: {
    camera_title: 'KOMI Camera', monitor_title: 'KOMI Monitor',
    camera_id: 'Camera ID', device: 'Camera', facing: 'Facing', front: 'Front', back: 'Back',
    any_device: 'Default', resolution: 'Resolution', frame_rate: 'Frame rate',
    connect: 'Connect', disconnect: 'Disconnect', state: 'State', analysed_fps: 'Analysed',
    latency: 'Latency', exercise: 'Exercise', reps: 'Reps', score: 'Last score',
    feedback: 'Feedback', speak: 'Speak cues', idle: 'idle', connecting: 'connecting',
    connected: 'connected', reconnecting: 'reconnecting', failed: 'failed', closed: 'closed',
    no_camera: 'Camera access was refused or no camera was found.',
    insecure: 'Camera access needs HTTPS on a phone: start the server with --https.',
    overlay: 'Overlay', cameras: 'Cameras', no_cameras: 'No cameras are streaming yet.',
    offline: 'offline', mismatch: 'Overlay match', settings: 'Settings', language: '한국어',
    phase: 'Phase', good_reps: 'good', bad_reps: 'to fix', angle: 'Angle',
    no_exercise: 'None (pose only)', profile: 'Level', beginner: 'Beginner',
    standard: 'Standard', strict: 'Strict', busy: 'server busy',
    busy_hint: 'The server cannot analyse every frame: it analyses the newest and skips older ones.',
    video_held: 'video held',
    latency_hint: 'Pose latency {pose} ms (p95 {p95} ms): from a frame reaching this page to its ' +
      'skeleton. The video is held {held} ms on purpose, so each skeleton is drawn on its own ' +
      'frame: camera to screen takes {total} ms. The camera page shows its latency without this hold.',
    latency_hint_waiting: 'Pose latency: from a frame reaching this page to its skeleton. The ' +
      'video is held that long (and a frame more) so each skeleton is drawn on its own frame.',
    camera_latency_hint: 'From this camera sending a frame to its skeleton coming back.',
    no_access: 'no access',
    access_needed: 'This page needs an access link. Open the link the KOMI server printed when ' +
      'it started (or scan its QR code), or ask the person who runs it for a new link.',
    access_expired: 'Your access link has expired, was revoked or is incomplete. Ask the person ' +
      'who runs the KOMI server for a new link.',
    access_forbidden_camera: 'This link does not allow streaming a camera. Ask the person who ' +
      'runs the KOMI server for a camera link.',
    access_forbidden_monitor: 'This link does not allow watching the cameras: it is a camera ' +
      'link. Ask the person who runs the KOMI server for a monitor link.',
    access_forbidden_exercise: 'This link does not allow choosing the exercise. Ask the person ' +
      'who runs the KOMI server for a monitor link.',
    access_forbidden_history: 'This link does not allow seeing people\'s history: it is a camera ' +
      'link. Ask the person who runs the KOMI server for a monitor link, or for your own ' +
      'history link.',
    person: 'Person', person_hint: 'Whose sets are recorded: 1 to 64 letters, digits, _ - or . ' +
      '(a new name starts a new history; empty: nobody)',
    person_invalid: 'A person is 1 to 64 letters, digits, _ - or .', nobody: 'nobody',
    history: 'History', best: 'Best', best_first: 'first set', reps_count: '{n:# rep|# reps}', seconds_unit: 's',
    history_title: 'KOMI History', people: 'People', sets: 'Sets',
    no_people: 'No one has a history yet. Tie a camera to a person on the camera or monitor page.',
    choose_person: 'Choose a person to see their sets, progress and next workout.',
    sets_count: '{n:# set|# sets}', last_seen: 'last seen {when}', no_sets: 'No sets yet.',
    progress: 'Progress', by_day: 'Days', by_week: 'Weeks', no_progress: 'No sets to chart yet.',
    export: 'Export', export_csv: 'CSV (a line per rep)', export_json: 'JSON (every set)',
    recommendation: 'Next workout', recommendation_unavailable: 'No recommendation right now: ' +
      'the server could not make one. Try again later.',
    recommendation_empty: 'Nothing to recommend yet.',
    plan_reps: '{sets} × {reps:# rep|# reps}', plan_hold: '{sets} × {hold} s',
    when: 'When', half_reps: 'Half reps', mean_score: 'Mean score', errors: 'Most common errors',
    hold_rom: 'Hold / range', running: 'running', of_total: 'of {total} s',
    reps_per_set: 'Reps per set', best_set: 'Best set', hold_time: 'Hold (s)', best_hold: 'Best hold (s)',
    rom: 'Range of motion (°)', score_axis: 'Score', load_failed: 'Could not load this: {error}',
    reps_detail: 'Reps', rep: 'Rep', duration: 'Duration', good: 'good', to_fix: 'to fix',
    ended_camera_left: 'camera left', ended_timeout: 'out of view',
    err_shallow: 'not deep enough', err_knees_cave: 'knees caving in', err_hips_sag: 'hips sagging',
    err_hips_pike: 'hips too high', err_hips_low: 'hips not lifted', err_elbows_flare: 'elbows flaring',
    err_asymmetric: 'uneven sides', err_no_lockout: 'no full lockout', err_too_low: 'arms too low',
    err_arms_low: 'hands not overhead',
    station: 'Station', station_hint: 'Cameras filming one person share a station id (1 to 64 ' +
      'letters, digits, _ - or .): the server pairs their frames and counts once. Empty: none.',
    station_invalid: 'A station is 1 to 64 letters, digits, _ - or .',
    station_reps: 'Station reps', station_of: 'Station {station}', sync_error: 'Sync error',
    sync_hint: 'How far apart in capture time the paired frames of the views are (mean; p95 {p95} ms).',
    sync_hint_short: 'How far apart in capture time the paired frames of the views are.',
    counted_by: 'counted by {camera}', counts_here: 'counts reps', station_waiting: 'waiting for {cameras}',
    metric_reps: 'Reps from', metric_depth: 'Depth from', metric_hip_hinge: 'Hip hinge from',
    metric_symmetry: 'Symmetry from', metric_knee_tracking: 'Knee tracking from',
    view_side: 'side view', view_front: 'front view',
    calibration: 'Calibration', calibrated: 'calibrated', not_calibrated: 'not calibrated',
    not_calibrated_3d: 'Not calibrated: calibrate the station to see the person in 3-D.',
    waiting_pose3d: 'Waiting for the person to be seen by two cameras…',
    no_webgl: 'This browser cannot draw 3-D (no WebGL).',
    view3d_hint: 'The person in 3-D: drag to turn, wheel to zoom.',
    calibrate_board: 'Board', calibrate_self: 'Self',
    calibrate_board_hint: 'Show the printed (or on-screen) board to every camera of the station, ' +
      'turning it slowly, then press.',
    calibrate_self_hint: 'The person stands in view of every camera and moves (a few squats); ' +
      'their height sets the scale.',
    body_height_hint: 'The person\'s height in metres (sets the scale of a self-calibration).',
    body_height_invalid: 'Give the person\'s height in metres (1 to 2.5).',
    board_image: 'Board image', join_link: 'Join (QR)', join_link_hint: 'A camera link that joins this station: scan it with each phone', calibrating_board: 'Calibrating from the board… (up to a minute)',
    calibrating_self: 'Calibrating from the person… (up to a minute)',
    calibration_done: 'Calibrated: reprojection error {error} px',
    calibration_detail: '{method}: reprojection error {error} px',
    calibration_failed: 'Calibration failed: {error}', unreachable: 'server unreachable',
    unsupported: 'not supported',
    no_webrtc_camera: 'This browser cannot stream live video (it has no WebRTC), so this page ' +
      'cannot send your camera. Open this link in a current Chrome, Edge, Firefox or Safari ' +
      '(on an iPhone or iPad: Safari).',
    no_camera_api: 'This browser does not let web pages use the camera. Open this link in a ' +
      'current Chrome, Edge, Firefox or Safari (on an iPhone or iPad: Safari).',
    no_webrtc_monitor: 'This browser cannot play live video (it has no WebRTC), so this page ' +
      'cannot show the cameras. Open this link in a current Chrome, Edge, Firefox or Safari.',
  },
  ko: {
    camera_title: 'KOMI 카메라', monitor_title: 'KOMI 모니터',
    camera_id: '카메라 ID', device: '카메라', facing: '방향', front: '전면', back: '후면',
    any_device: '기본', resolution: '해상도', frame_rate: '프레임 속도',
    connect: '연결', disconnect: '연결 끊기', state: '상태', analysed_fps: '분석',
    latency: '지연', exercise: '운동', reps: '횟수', score: '최근 점수',
    feedback: '피드백', speak: '음성 안내', idle: '대기', connecting: '연결 중',
    connected: '연결됨', reconnecting: '재연결 중', failed: '실패', closed: '닫힘',
    no_camera: '카메라 권한이 거부되었거나 카메라를 찾을 수 없습니다.',
    insecure: '휴대폰에서는 HTTPS가 필요합니다: 서버를 --https 로 시작하세요.',
    overlay: '오버레이', cameras: '카메라', no_cameras: '아직 스트리밍 중인 카메라가 없습니다.',
    offline: '오프라인', mismatch: '오버레이 일치', settings: '설정', language: 'English',
    phase: '단계', good_reps: '좋음', bad_reps: '교정 필요', angle: '각도',
    no_exercise: '없음 (자세만)', profile: '난이도', beginner: '초급',
    standard: '보통', strict: '엄격', busy: '서버 과부하',
    busy_hint: '서버가 모든 프레임을 분석하지 못합니다: 최신 프레임만 분석하고 이전 프레임은 건너뜁니다.',
    video_held: '영상 대기',
    latency_hint: '자세 지연 {pose} ms (p95 {p95} ms): 프레임이 이 페이지에 도착한 뒤 골격이 오기까지. ' +
      '골격이 자기 프레임 위에 그려지도록 영상을 일부러 {held} ms 늦춰 보여 줍니다: 카메라에서 화면까지 ' +
      '{total} ms. 카메라 페이지의 지연에는 이 대기가 없습니다.',
    latency_hint_waiting: '자세 지연: 프레임이 이 페이지에 도착한 뒤 골격이 오기까지. 골격이 자기 ' +
      '프레임 위에 그려지도록 영상을 그만큼 (한 프레임 더) 늦춰 보여 줍니다.',
    camera_latency_hint: '이 카메라가 프레임을 보낸 뒤 골격이 돌아오기까지.',
    no_access: '접근 불가',
    access_needed: '이 페이지를 열려면 접속 링크가 필요합니다. KOMI 서버가 시작할 때 출력한 링크를 ' +
      '열거나 (QR 코드를 스캔하거나), 서버를 운영하는 사람에게 새 링크를 요청하세요.',
    access_expired: '접속 링크가 만료되었거나, 취소되었거나, 일부가 빠졌습니다. KOMI 서버를 운영하는 ' +
      '사람에게 새 링크를 요청하세요.',
    access_forbidden_camera: '이 링크로는 카메라를 스트리밍할 수 없습니다. KOMI 서버를 운영하는 ' +
      '사람에게 카메라 링크를 요청하세요.',
    access_forbidden_monitor: '이 링크로는 카메라를 볼 수 없습니다: 카메라용 링크입니다. KOMI 서버를 ' +
      '운영하는 사람에게 모니터 링크를 요청하세요.',
    access_forbidden_exercise: '이 링크로는 운동을 고를 수 없습니다. KOMI 서버를 운영하는 사람에게 ' +
      '모니터 링크를 요청하세요.',
    access_forbidden_history: '이 링크로는 기록을 볼 수 없습니다: 카메라용 링크입니다. KOMI 서버를 ' +
      '운영하는 사람에게 모니터 링크나 본인의 기록 링크를 요청하세요.',
    person: '사람', person_hint: '누구의 세트를 기록할지: 영문자, 숫자, _ - . 1~64자 ' +
      '(새 이름이면 새 기록을 시작합니다; 비우면 아무도 아님)',
    person_invalid: '사람 이름은 영문자, 숫자, _ - . 1~64자입니다', nobody: '없음',
    history: '기록', best: '최고 기록', best_first: '첫 세트', reps_count: '{n}회', seconds_unit: '초',
    history_title: 'KOMI 기록', people: '사람', sets: '세트',
    no_people: '아직 기록이 있는 사람이 없습니다. 카메라나 모니터 페이지에서 카메라에 사람을 지정하세요.',
    choose_person: '사람을 고르면 세트, 진행 상황, 다음 운동 추천을 볼 수 있습니다.',
    sets_count: '{n}세트', last_seen: '최근 {when}', no_sets: '아직 세트가 없습니다.',
    progress: '진행 상황', by_day: '일별', by_week: '주별', no_progress: '아직 그래프로 볼 세트가 없습니다.',
    export: '내보내기', export_csv: 'CSV (반복마다 한 줄)', export_json: 'JSON (모든 세트)',
    recommendation: '다음 운동 추천', recommendation_unavailable: '지금은 추천을 만들 수 없습니다: ' +
      '서버가 추천을 만들지 못했습니다. 나중에 다시 시도하세요.',
    recommendation_empty: '아직 추천할 운동이 없습니다.',
    plan_reps: '{sets}세트 × {reps}회', plan_hold: '{sets}세트 × {hold}초',
    when: '날짜', half_reps: '절반 반복', mean_score: '평균 점수', errors: '자주 한 실수',
    hold_rom: '유지 / 가동 범위', running: '진행 중', of_total: '전체 {total}초 중',
    reps_per_set: '세트당 횟수', best_set: '최고 세트', hold_time: '유지 시간 (초)', best_hold: '최고 유지 (초)',
    rom: '가동 범위 (°)', score_axis: '점수', load_failed: '불러오지 못했습니다: {error}',
    reps_detail: '반복', rep: '회차', duration: '시간', good: '좋음', to_fix: '교정 필요',
    ended_camera_left: '카메라 종료', ended_timeout: '화면 밖',
    err_shallow: '깊이 부족', err_knees_cave: '무릎이 안으로 모임', err_hips_sag: '엉덩이 처짐',
    err_hips_pike: '엉덩이가 너무 높음', err_hips_low: '엉덩이를 덜 들어 올림', err_elbows_flare: '팔꿈치 벌어짐',
    err_asymmetric: '좌우 불균형', err_no_lockout: '끝까지 펴지 않음', err_too_low: '팔 높이 부족',
    err_arms_low: '손이 머리 위까지 안 올라감',
    station: '스테이션', station_hint: '한 사람을 찍는 카메라들은 같은 스테이션 ID를 씁니다 (영문자, 숫자, ' +
      '_ - . 1~64자): 서버가 프레임을 짝지어 한 번만 셉니다. 비우면 없음.',
    station_invalid: '스테이션 ID는 영문자, 숫자, _ - . 1~64자입니다',
    station_reps: '스테이션 횟수', station_of: '스테이션 {station}', sync_error: '동기 오차',
    sync_hint: '짝지은 프레임들의 촬영 시각 차이 (평균; p95 {p95} ms).',
    sync_hint_short: '짝지은 프레임들의 촬영 시각 차이.',
    counted_by: '{camera} 에서 셈', counts_here: '횟수 측정', station_waiting: '{cameras:을/를} 기다리는 중',
    metric_reps: '횟수:', metric_depth: '깊이:', metric_hip_hinge: '엉덩이 접힘:',
    metric_symmetry: '좌우 균형:', metric_knee_tracking: '무릎 방향:',
    view_side: '측면', view_front: '정면',
    calibration: '보정', calibrated: '보정됨', not_calibrated: '보정 안 됨',
    not_calibrated_3d: '보정되지 않았습니다: 스테이션을 보정하면 3D로 볼 수 있습니다.',
    waiting_pose3d: '두 카메라에 사람이 보이기를 기다리는 중…',
    no_webgl: '이 브라우저는 3D를 그릴 수 없습니다 (WebGL 없음).',
    view3d_hint: '3D 자세: 끌어서 돌리고, 휠로 확대합니다.',
    calibrate_board: '보드', calibrate_self: '사람',
    calibrate_board_hint: '인쇄한 (또는 화면에 띄운) 보드를 모든 카메라에 보여 주며 천천히 돌린 뒤 누르세요.',
    calibrate_self_hint: '사람이 모든 카메라에 보이게 서서 움직입니다 (스쿼트 몇 번); 키로 크기를 맞춥니다.',
    body_height_hint: '사람의 키 (미터; 사람 보정의 크기 기준).',
    body_height_invalid: '키를 미터로 입력하세요 (1~2.5).',
    board_image: '보드 이미지', join_link: '참여 (QR)', join_link_hint: '이 스테이션에 참여하는 카메라 링크: 휴대폰마다 스캔하세요', calibrating_board: '보드로 보정하는 중… (최대 1분)',
    calibrating_self: '사람으로 보정하는 중… (최대 1분)',
    calibration_done: '보정 완료: 재투영 오차 {error} px',
    calibration_detail: '{method}: 재투영 오차 {error} px',
    calibration_failed: '보정 실패: {error}', unreachable: '서버에 연결할 수 없음',
    unsupported: '지원 안 됨',
    no_webrtc_camera: '이 브라우저는 실시간 영상을 보낼 수 없어 (WebRTC 없음) 카메라를 연결할 수 ' +
      '없습니다. 최신 Chrome, Edge, Firefox 또는 Safari에서 이 링크를 여세요 (iPhone·iPad는 Safari).',
    no_camera_api: '이 브라우저는 웹 페이지에서 카메라를 쓸 수 없습니다. 최신 Chrome, Edge, Firefox ' +
      '또는 Safari에서 이 링크를 여세요 (iPhone·iPad는 Safari).',
    no_webrtc_monitor: '이 브라우저는 실시간 영상을 재생할 수 없어 (WebRTC 없음) 카메라를 보여 줄 수 ' +
      '없습니다. 최신 Chrome, Edge, Firefox 또는 Safari에서 이 링크를 여세요.',
  },
};

let language = localStorage.getItem('komi.language') ||
  ((navigator.language || 'en').toLowerCase().startsWith('ko') ? 'ko' : 'en');

export function currentLanguage() { return language; }

export function t(key) {
  return (STRINGS[language] && STRINGS[language][key]) || STRINGS.en[key] || key;
}

// A text with {name} placeholders filled from `values`, plurals and particles chosen.
export function format(key, values) {
  return fill(t(key), values);
}

// Fills every element with data-i18n="key" (its text) or data-i18n-title="key" (its tooltip)
// and keeps the <html lang> right.
export function applyLanguage(root = document) {
  document.documentElement.lang = language;
  for (const element of root.querySelectorAll('[data-i18n]')) {
    element.textContent = t(element.dataset.i18n);
  }
  for (const element of root.querySelectorAll('[data-i18n-title]')) {
    element.title = t(element.dataset.i18nTitle);
  }
}

export function toggleLanguage() {
  language = language === 'ko' ? 'en' : 'ko';
  localStorage.setItem('komi.language', language);
  applyLanguage();
}
