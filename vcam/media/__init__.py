"""Media helpers: the virtual camera output (``virtual_camera``, ``camera_name``), the
capture and loopback devices (``devices``), the video writer (``video_writer``) and the
probe of files to sharpen (``probe``)."""
